#include "crates/vmdk/sparse_header.h"

#include "crates/base/checked.h"

namespace instar::vmdk {

base::Result<SparseHeader, SparseHeaderError> ParseSparseHeader(base::ByteView bytes) {
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
  if (h.grain_sectors > kMaxGrainSectors) {
    return base::Fail(SparseHeaderError::kBadGrainSize, h.grain_sectors);
  }
  // qemu keeps the grain directory's size in 32 bits: larger counts wrap before the check.
  const auto l1_entries = static_cast<uint32_t>(base::DivRoundUp(h.capacity_sectors,
                                                                  l1_entry_sectors));
  if (l1_entries > kMaxL1Entries) return base::Fail(SparseHeaderError::kL1TooBig);
  return h;
}

}  // namespace instar::vmdk
