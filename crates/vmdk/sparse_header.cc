#include "crates/vmdk/sparse_header.h"

#include "crates/base/checked.h"

namespace instar::vmdk {

namespace {

// qemu reads a table with one request: it fails when the request ends past the largest image.
bool Readable(uint64_t offset, uint64_t bytes) {
  return offset <= kMaxImageBytes && bytes <= kMaxImageBytes - offset;
}

constexpr uint32_t kMarkerEndOfStream = 0;
constexpr uint32_t kMarkerFooter = 3;

// `from_footer`: the header is the footer's copy, whose grain directory offset is taken as
// it stands (qemu does not look for a second footer).
base::Result<SparseHeader, SparseHeaderError> Parse(base::ByteView bytes, uint64_t file_bytes,
                                                   bool from_footer) {
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
  // qemu keeps the product in 32 bits: one that is a multiple of 2^32 (a grain of 2^32 sectors)
  // is refused as zero, before the grain size is checked.
  const auto l1_entry_sectors = static_cast<uint32_t>(uint64_t{h.gtes_per_gt} * h.grain_sectors);
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
  if ((from_footer || h.gd_offset_sectors != kGdAtEnd) &&
      (h.gd_offset_sectors > UINT64_MAX >> 9 || !Readable(h.gd_offset_sectors << 9, l1_bytes))) {
    return base::Fail(SparseHeaderError::kL1Unreadable);
  }
  if ((h.flags & kFlagRedundantGrainTable) != 0 && !Readable(h.rgd_offset_sectors << 9, l1_bytes)) {
    return base::Fail(SparseHeaderError::kL1BackupUnreadable);
  }
  return h;
}

}  // namespace

base::Result<SparseHeader, SparseHeaderError> ParseSparseHeader(base::ByteView bytes,
                                                                uint64_t file_bytes) {
  return Parse(bytes, file_bytes, /*from_footer=*/false);
}

uint64_t EmbeddedDescriptorFileOffset(base::ByteView head) {
  uint32_t magic = 0;
  uint64_t capacity = 0, descriptor_offset = 0;
  if (!head.Le32(0, &magic) || magic != kSparseMagic || !head.Le64(12, &capacity) ||
      !head.Le64(28, &descriptor_offset) || capacity != 0) {
    return 0;
  }
  // Offsets past the block layer's limit read nothing; qemu fails such a read.
  return descriptor_offset <= kMaxImageBytes / 512 ? descriptor_offset * 512 : 0;
}

bool DefersToFooter(base::ByteView head) {
  uint32_t magic = 0;
  uint64_t capacity = 0, descriptor_offset = 0, gd_offset = 0;
  if (!head.Le32(0, &magic) || magic != kSparseMagic || !head.Has(0, 80)) return false;
  head.Le64(12, &capacity);
  head.Le64(28, &descriptor_offset);
  head.Le64(56, &gd_offset);
  return gd_offset == kGdAtEnd && !(capacity == 0 && descriptor_offset != 0);
}

base::Result<SparseHeader, SparseHeaderError> ParseFooter(base::ByteView footer,
                                                          uint64_t file_bytes) {
  uint32_t marker_size = 1, marker_type = 0, magic = 0, eos_size = 1, eos_type = 1;
  uint64_t eos_value = 1;
  if (!footer.Has(0, kFooterBytes)) return base::Fail(SparseHeaderError::kFooterUnreadable);
  footer.Le32(8, &marker_size);
  footer.Le32(12, &marker_type);
  footer.Le32(512, &magic);
  footer.Le64(1024, &eos_value);
  footer.Le32(1032, &eos_size);
  footer.Le32(1036, &eos_type);
  if (magic != kSparseMagic || marker_size != 0 || marker_type != kMarkerFooter ||
      eos_value != 0 || eos_size != 0 || eos_type != kMarkerEndOfStream) {
    return base::Fail(SparseHeaderError::kInvalidFooter);
  }
  return Parse(footer.Sub(512, kSparseHeaderSize), file_bytes, /*from_footer=*/true);
}

}  // namespace instar::vmdk
