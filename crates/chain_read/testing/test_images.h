// Hand-built qcow2 and vmdk images in memory for the chain_read unit tests: every table entry
// is set explicitly, so tests can point them anywhere (hostile cases included). Host only.
#pragma once

#include <cstdint>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"

namespace instar::chain_read::testing {

using Bytes = std::vector<uint8_t>;

void PutBe32(Bytes& b, uint64_t at, uint32_t v);
void PutBe64(Bytes& b, uint64_t at, uint64_t v);
void PutLe32(Bytes& b, uint64_t at, uint32_t v);
void PutLe64(Bytes& b, uint64_t at, uint64_t v);

// A reader over a byte vector (which must outlive it).
base::ImageReader ReaderOf(const Bytes& bytes);

// Raw deflate as qemu writes qcow2 clusters (windowBits -12), or a zlib stream (vmdk).
Bytes DeflateRaw(const Bytes& in);
Bytes DeflateZlib(const Bytes& in);

// A qcow2 v3 image: header, refcount table and block (contents not needed for reading), and
// an L1 table; clusters appended by Alloc. 16-bit refcounts.
class Qcow2Image {
 public:
  Qcow2Image(uint32_t cluster_bits, uint64_t size, bool extended_l2 = false);

  uint64_t cluster() const { return uint64_t{1} << cluster_bits_; }
  uint64_t per_l2() const;  // guest bytes one L2 table maps
  uint64_t l1_offset() const { return 3 * cluster(); }
  // Appends a zeroed cluster and returns its offset.
  uint64_t Alloc();
  // Appends clusters filled with `byte`; returns the first one's offset.
  uint64_t AllocData(uint64_t clusters, uint8_t byte);
  void SetL1(uint64_t index, uint64_t raw) { PutBe64(bytes, l1_offset() + index * 8, raw); }
  // L2 entry `index` of the table at `l2`; `bitmap` only with extended L2.
  void SetL2(uint64_t l2, uint64_t index, uint64_t raw, uint64_t bitmap = 0);
  // Maps guest cluster `guest_cluster` (allocating its L2 table if needed) to `raw`.
  void Map(uint64_t guest_cluster, uint64_t raw, uint64_t bitmap = 0);
  // Stores `data` deflated and maps guest cluster `guest_cluster` to it as compressed.
  void MapCompressed(uint64_t guest_cluster, const Bytes& data);

  Bytes bytes;

 private:
  uint32_t cluster_bits_;
  bool extended_;
};

// A monolithicSparse vmdk extent: header, grain directory (at sector 1), one grain table per
// directory entry allocated on demand, grains appended. 4 KiB grains, `gtes` entries per table.
class VmdkImage {
 public:
  VmdkImage(uint64_t capacity_sectors, uint32_t gtes, uint32_t flags = 0,
            uint16_t compress = 0);
  static constexpr uint64_t kGrain = 4096;
  // Sets grain table entry for guest grain `grain` to `sector` (allocating its table).
  void SetGrain(uint64_t grain, uint32_t sector);
  // Appends a grain of `byte`s and maps guest grain `grain` to it.
  void AddGrain(uint64_t grain, uint8_t byte);
  // Appends a compressed grain (with a grain marker when `marker`), maps `grain` to it.
  void AddCompressedGrain(uint64_t grain, const Bytes& data, bool marker);
  // Moves the header to a stream footer: header gd_offset says "at end", and a footer
  // marker, the real header and an end-of-stream marker close the file.
  void MoveHeaderToFooter();

  Bytes bytes;

 private:
  uint64_t AppendSectors(uint64_t sectors);
  uint32_t gtes_;
  uint64_t gd_entries_;
};

}  // namespace instar::chain_read::testing
