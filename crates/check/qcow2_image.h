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
#include "crates/qcow2/snapshots.h"

namespace instar::check {

inline constexpr uint64_t kL1EntryReservedMask = 0x7F000000000001FFull;
inline constexpr uint64_t kL2StandardReservedMask = 0x3F000000000001FEull;
inline constexpr uint64_t kReftableReservedMask = 0x1FFull;
inline constexpr uint32_t kSnapshotHeaderBytes = qcow2::kSnapshotFixedBytes;
// The extra data a v3 snapshot entry must have (VM state size, disk size), and the extra data
// qemu knows and writes (those and the instruction count).
inline constexpr uint32_t kSnapshotRequiredExtraData = 16;
inline constexpr uint32_t kSnapshotKnownExtraData = 24;
inline constexpr uint64_t kAutoclearBitmaps = 1u << 0;

struct Qcow2Image {
  qcow2::Header header;
  qcow2::Geometry geometry;
  uint64_t file_size = 0;
  uint64_t l1_offset = 0;
  uint32_t l1_entries = 0;
  uint64_t reftable_offset = 0;
  uint64_t reftable_entries = 0;
  // The snapshot table as the check's first stage accepted it (SnapshotTableStage).
  uint64_t snapshots_offset = 0;
  uint32_t snapshot_count = 0;
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

// qemu's validate_table_offset: the table is cluster aligned and its end fits in an int64.
bool TableOffsetValid(uint64_t offset, uint64_t entries, uint64_t entry_bytes,
                      uint64_t cluster_size);

// Parses and validates `first_cluster` (the start of the file, up to one cluster) of a file of
// `file_size` bytes, in qemu's order, as qemu opens an image for checking (the snapshot table
// is the check's first stage, not an open error).
base::Result<Qcow2Image, abi::CheckError> OpenQcow2(base::ByteView first_cluster,
                                                    uint64_t file_size);

// One snapshot table entry: its fixed header, where its parts lie, and its id and name
// (clipped for messages).
struct SnapshotEntry {
  uint8_t header[kSnapshotHeaderBytes] = {};
  uint64_t l1_offset = 0;
  uint32_t l1_entries = 0;
  uint32_t extra_bytes = 0;   // as recorded (qemu keeps at most kMaxSnapshotExtraData)
  uint64_t extra_offset = 0;  // the extra data, then the id, then the name
  uint64_t id_offset = 0;
  uint32_t id_size = 0;
  uint64_t name_offset = 0;
  uint32_t name_size = 0;
  uint64_t end = 0;           // just past the name (the next entry starts 8-byte aligned)
  uint32_t id_len = 0;
  uint32_t name_len = 0;
  char id[abi::kSnapshotTextBytes] = {};
  char name[abi::kSnapshotTextBytes] = {};
};

// Walks `count` snapshot table entries from `offset`, one at a time (the table may be far
// larger than guest memory), with qemu's offset arithmetic.
class SnapshotReader {
 public:
  SnapshotReader(const ImageAccess& io, uint64_t offset, uint32_t count)
      : io_(io), count_(count), offset_(offset), start_(offset), end_(offset) {}
  SnapshotReader(const ImageAccess& io, const Qcow2Image& image)
      : SnapshotReader(io, image.snapshots_offset, image.snapshot_count) {}
  // False when every entry has been read, or on a read qemu could not do (io_failed()).
  bool Next(SnapshotEntry* entry);
  // qemu's snapshots_size: from the table's start to the end of the last entry read.
  uint64_t table_bytes() const { return end_ - start_; }
  bool io_failed() const { return io_failed_; }

 private:
  bool ReadText(uint64_t offset, uint32_t length, char* out, uint32_t* out_len);

  const ImageAccess& io_;
  uint32_t count_;
  uint32_t done_ = 0;
  uint64_t offset_;
  uint64_t start_;
  uint64_t end_;
  bool io_failed_ = false;
};

}  // namespace instar::check
