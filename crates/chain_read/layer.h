// Layer: one image file (qcow2, a single-file sparse vmdk, or raw) opened for reading its
// guest-visible content, purely: it reads the file through a base::ImageReader (no call-table
// I/O) and maps guest offsets to what this file alone says about them. A Chain (chain.h)
// stacks layers into what qemu reads from the top of a backing chain.
//
// Memory: Open takes the Layer object and its format state (~400 bytes) and then exactly
// `budget` bytes from the arena (raw: nothing more; it needs no cache), and never allocates
// again. Opening a qcow2 image also needs 4 KiB plus one cluster of arena space for the
// duration of the call (the header's first cluster), released before Open returns. Inside
// the budget a cache of fixed-size blocks holds the parts of the L1/L2 tables (qcow2) or
// grain directory and grain tables (vmdk) read so far, read on demand and evicted
// least-recently-used, so an image of any size works in a small budget. The first
// compressed cluster or grain permanently takes its decompression buffers from the top of
// that cache: 2 x cluster_size + 512 bytes (qcow2) or 3 x grain size (vmdk
// streamOptimized), rounded up to whole cache blocks, and at least one cache block must
// remain (else that read fails with kArenaTooSmall, detail: a budget that suffices).
// Minimum budgets (each block also costs 16 bytes of bookkeeping):
//   qcow2: 2 blocks of min(cluster_size, 32 KiB); with compressed clusters, add the above
//          (64 KiB clusters: ~193 KiB; 2 MiB clusters: ~4.1 MiB).
//   vmdk:  2 blocks of 4 KiB; streamOptimized with 64 KiB grains: ~201 KiB.
// kDefaultLayerBudget covers every qemu default (64 KiB clusters or grains, compressed or
// not) with a few table blocks to spare.
//
// Faithfulness to qemu 7.2: virtual_size() is what qemu reports; data clusters are read where
// the tables say, and the part of a data run past the end of the file reads as zeros (qemu's
// file driver zero-fills short reads). Metadata qemu would follow past the end of the file
// (an L2 table, a grain table, the start of a data or compressed cluster) is kCorrupt here.
// Corrupt-flagged and dirty qcow2 images are read (qemu opens them read-only). A qcow2
// compressed cluster is inflated from at most cluster_size + 512 of the bytes its entry
// states (everything qemu's writer produces; qemu itself reads up to 2 x cluster_size).
// Freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/read_error.h"

namespace instar::chain_read {

namespace internal {
class BlockCache;
struct Piece;
struct Qcow2Mapping;
struct VmdkMapping;
}  // namespace internal

enum class ImageFormat : uint8_t {
  kRaw,    // everything is data, host offset == guest offset
  kQcow2,  // v2 and v3, every cluster size, standard and extended L2 entries
  kVmdk,   // a hosted sparse extent file: monolithicSparse or streamOptimized
};

inline constexpr uint64_t kDefaultLayerBudget = 256u << 10;

// What a guest range maps to in one layer.
enum class ExtentKind : uint8_t {
  kData,         // plain bytes at host_offset.. in this file
  kZero,         // reads as zeros and hides every layer below (qcow2 zero flag or zero
                 // subclusters, vmdk zeroed grains)
  kUnallocated,  // this layer says nothing: the layer below (or zeros) shows through
  kCompressed,   // one compressed cluster/grain (never merged with a neighbour); host_offset
                 // is where its compressed bytes start
};

struct Extent {
  ExtentKind kind = ExtentKind::kUnallocated;
  uint64_t length = 0;       // > 0 on success
  uint64_t host_offset = 0;  // kData: file offset of the first byte; kCompressed: see above
};

class Layer {
 public:
  // Opens the image. The reader (copied) must stay valid as long as the layer; `reader.size`
  // is the file size. `budget` bytes are taken from `arena` (see the header comment). Refuses,
  // with distinct codes: invalid headers (qemu's open checks, via crates/qcow2 and
  // crates/vmdk), encrypted qcow2, external data files, text-descriptor (multi-file) vmdk,
  // a stream footer qemu would not accept. Later, Map and Read refuse what they meet: tables
  // and clusters outside the file (kCorrupt), zstd-compressed clusters, broken compressed
  // data.
  static base::Result<Layer*, ReadError> Open(ImageFormat format, const base::ImageReader& reader,
                                              base::Arena& arena,
                                              uint64_t budget = kDefaultLayerBudget);

  ImageFormat format() const { return format_; }
  // The size qemu gives the guest: raw: the file size rounded up to 512 bytes; qcow2: the
  // header's size rounded down to 512 bytes; vmdk: capacity x 512.
  uint64_t virtual_size() const { return virtual_size_; }
  // The allocation unit: qcow2 subcluster size (the cluster size without extended L2), vmdk
  // grain size, raw 512. Map runs start and end on these boundaries (or the virtual size),
  // except where the request itself starts or ends.
  uint64_t granularity() const { return granularity_; }

  // The longest run starting at `guest_offset`, at most `max_length` bytes (and never past
  // virtual_size()), that maps uniformly: one kind, and for kData one contiguous host range
  // (so a whole run is one reader call). Requires guest_offset < virtual_size() and
  // max_length > 0 (else kOutOfRange).
  base::Result<Extent, ReadError> Map(uint64_t guest_offset, uint64_t max_length);

  // Reads this layer's own content of [guest_offset, guest_offset + length) into `out`:
  // data and decompressed clusters as stored, kZero and kUnallocated ranges as zeros (use Map
  // to tell them apart). Contiguous host ranges are read with one reader call each. The range
  // must lie within virtual_size() (else kOutOfRange).
  base::Status<ReadError> Read(uint64_t guest_offset, uint64_t length, uint8_t* out);

  // Reads the bytes of the extent `extent` (as Map returned it for `guest_offset`; its length
  // may be shortened by the caller) into `out`: kData and kCompressed only; others are zeros.
  // Chain uses this to avoid mapping twice.
  base::Status<ReadError> ReadExtent(uint64_t guest_offset, const Extent& extent, uint8_t* out);

  Layer() = default;  // for the arena; use Open

 private:
  base::Result<internal::Piece, ReadError> PieceAt(uint64_t guest_offset);
  base::Status<ReadError> ReadData(uint64_t host_offset, uint64_t length, uint8_t* out);
  base::Status<ReadError> ReadCompressed(uint64_t guest_offset, const Extent& extent,
                                         uint8_t* out);
  base::Status<ReadError> ReserveDecompression();

  ImageFormat format_ = ImageFormat::kRaw;
  base::ImageReader reader_;
  uint64_t virtual_size_ = 0;
  uint64_t granularity_ = 512;
  internal::BlockCache* cache_ = nullptr;
  internal::Qcow2Mapping* qcow2_ = nullptr;
  internal::VmdkMapping* vmdk_ = nullptr;
  // Decompression: compressed input, one decompressed cluster/grain, and which one it holds.
  uint8_t* compressed_in_ = nullptr;
  uint64_t compressed_in_bytes_ = 0;
  uint8_t* decompressed_ = nullptr;
  uint64_t decompressed_bytes_ = 0;     // valid bytes in `decompressed_`
  uint64_t decompressed_host_ = ~0ull;  // host offset of the cluster it holds, ~0: none
};

}  // namespace instar::chain_read
