// Qcow2Image: what the check needs from a qcow2 file, validated the way qemu validates an image
// it opens for checking (table offsets and sizes against qemu's limits), plus a reader that
// walks the snapshot table one entry at a time (the table may be far larger than guest memory).
// Pure and freestanding; the caller supplies the bytes. No allocation.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/base/result.h"
#include "crates/check/image_access.h"
#include "crates/qcow2/geometry.h"
#include "crates/qcow2/header.h"

namespace instar::check {

inline constexpr uint64_t kL1EntryReservedMask = 0x7F000000000001FFull;
inline constexpr uint64_t kL2StandardReservedMask = 0x3F000000000001FEull;
inline constexpr uint64_t kReftableReservedMask = 0x1FFull;
inline constexpr uint32_t kMaxSnapshots = 65536;
inline constexpr uint32_t kSnapshotHeaderBytes = 40;
inline constexpr uint64_t kAutoclearBitmaps = 1u << 0;

struct Qcow2Image {
  qcow2::Header header;
  qcow2::Geometry geometry;
  uint64_t file_size = 0;
  uint64_t l1_offset = 0;
  uint32_t l1_entries = 0;
  uint64_t reftable_offset = 0;
  uint64_t reftable_entries = 0;
  uint64_t snapshots_offset = 0;
  uint32_t snapshot_count = 0;       // at most kMaxSnapshots (qemu checks only those)
  uint32_t snapshot_overhang = 0;    // entries the header claims past kMaxSnapshots
  bool snapshot_table_invalid = false;  // qemu's check refuses the table's offset
  bool has_bitmaps = false;
  uint64_t bitmap_directory_offset = 0;
  uint64_t bitmap_directory_bytes = 0;
  uint32_t bitmap_count = 0;
  // A bitmaps extension whose autoclear bit is clear: qemu warns and ignores the bitmaps.
  bool bitmaps_inconsistent = false;
  uint64_t cluster_size() const { return geometry.cluster_size; }
  uint32_t cluster_bits() const { return geometry.cluster_bits; }
  uint32_t refcount_order() const { return geometry.refcount_order; }
};

// Parses and validates `first_cluster` (the start of the file, up to one cluster) of a file of
// `file_size` bytes, in qemu's order. The snapshot table is not an open error in check mode:
// its problems are recorded for the check to report.
base::Result<Qcow2Image, abi::CheckError> OpenQcow2(base::ByteView first_cluster,
                                                    uint64_t file_size);

// One snapshot table entry: where its L1 table is, and its id and name (clipped for messages).
struct SnapshotEntry {
  uint64_t l1_offset = 0;
  uint32_t l1_entries = 0;
  uint32_t id_len = 0;
  uint32_t name_len = 0;
  char id[abi::kSnapshotTextBytes] = {};
  char name[abi::kSnapshotTextBytes] = {};
};

// Walks the snapshot table entry by entry. The table's total length (what qemu counts as the
// snapshot table's clusters) is known after the last entry.
class SnapshotReader {
 public:
  SnapshotReader(const ImageAccess& io, const Qcow2Image& image)
      : io_(io), count_(image.snapshot_count), offset_(image.snapshots_offset),
        start_(image.snapshots_offset) {}
  // False when every entry has been read or the table runs past any sane bound (then the
  // remaining entries are ignored, as a truncated table would be).
  bool Next(SnapshotEntry* entry);
  uint64_t table_bytes() const { return offset_ - start_; }
  bool io_failed() const { return io_failed_; }

 private:
  bool ReadText(uint64_t offset, uint32_t length, char* out, uint32_t* out_len);

  const ImageAccess& io_;
  uint32_t count_;
  uint32_t done_ = 0;
  uint64_t offset_;
  uint64_t start_;
  bool io_failed_ = false;
};

}  // namespace instar::check
