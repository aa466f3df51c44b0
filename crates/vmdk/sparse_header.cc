#include "crates/vmdk/sparse_header.h"

#include "crates/base/checked.h"

namespace instar::vmdk {

namespace {

// qemu reads a table with one request: it fails when the request ends past the largest image.
bool Readable(uint64_t offset, uint64_t bytes) {
  return offset <= kMaxImageBytes && bytes <= kMaxImageBytes - offset;
}

}  // namespace

base::Result<SparseHeader, SparseHeaderError> ParseSparseHeader(base::ByteView bytes,
                                                                uint64_t file_bytes) {
  uint32_t magic = 0;
  if (!bytes.Le32(0, &magic) || magic != kSparseMagic) {
    return base::Fail(SparseHeaderError::kNotSparse);
  }
  if (!bytes.Has(0, 80)) return base::Fail(SparseHeaderError::kTruncated);
  SparseHeader h;
  bytes.Le32(4, &h.version);
  bytes.Le32(8, &h.flags);
  bytes.Le64(12, &h.capacity_sectors);
  bytes.Le64(20, &h.grain_sectors);
  bytes.Le64(28, &h.descriptor_offset_sectors);
  bytes.Le64(36, &h.descriptor_size_sectors);
  bytes.Le32(44, &h.gtes_per_gt);
  bytes.Le64(48, &h.rgd_offset_sectors);
  bytes.Le64(56, &h.gd_offset_sectors);
  bytes.Le64(64, &h.overhead_sectors);
  h.unclean_shutdown = bytes.data()[72];
  bytes.Le16(77, &h.compress_algorithm);
  if (h.version > 3) return base::Fail(SparseHeaderError::kUnsupportedVersion, h.version);
  if (h.gtes_per_gt > kMaxGtesPerGt) {
    return base::Fail(SparseHeaderError::kBadGrainTableSize, h.gtes_per_gt);
  }
  // qemu multiplies without an overflow check; a product that wraps to zero is refused too.
  const uint64_t l1_entry_sectors = uint64_t{h.gtes_per_gt} * h.grain_sectors;
  if (l1_entry_sectors == 0) return base::Fail(SparseHeaderError::kBadL1EntrySize);
  // qemu compares sectors, and words the size in bytes as a (wrapping) signed 64-bit value.
  if (base::DivRoundUp(file_bytes, 512) < h.overhead_sectors) {
    return base::Fail(SparseHeaderError::kFileTruncated, h.overhead_sectors << 9);
  }
  if (h.grain_sectors > kMaxGrainSectors) {
    return base::Fail(SparseHeaderError::kBadGrainSize, h.grain_sectors);
  }
  // qemu keeps the grain directory's size in 32 bits: larger counts wrap before the check.
  const auto l1_entries = static_cast<uint32_t>(base::DivRoundUp(h.capacity_sectors,
                                                                  l1_entry_sectors));
  if (l1_entries > kMaxL1Entries) return base::Fail(SparseHeaderError::kL1TooBig);
  // A grain directory at the end (streamOptimized) is found through the footer instead.
  const uint64_t l1_bytes = uint64_t{l1_entries} * 4;
  if (h.gd_offset_sectors != kGdAtEnd && !Readable(h.gd_offset_sectors << 9, l1_bytes)) {
    return base::Fail(SparseHeaderError::kL1Unreadable);
  }
  if ((h.flags & kFlagRedundantGrainTable) != 0 && !Readable(h.rgd_offset_sectors << 9, l1_bytes)) {
    return base::Fail(SparseHeaderError::kL1BackupUnreadable);
  }
  return h;
}

}  // namespace instar::vmdk
