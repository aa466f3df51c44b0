#include "crates/check/metadata_overlap.h"

#include "crates/base/endian.h"
#include "crates/check/qcow2_image.h"

namespace instar::check {
namespace {

using abi::MetadataKind;

class Range {
 public:
  Range(uint64_t offset, uint64_t size) : offset_(offset), size_(size) {}
  bool Overlaps(uint64_t offset, uint64_t size) const {
    return size != 0 && offset_ < offset + size && offset < offset_ + size_;
  }

 private:
  uint64_t offset_, size_;
};

// Tables are read a few entries at a time into the caller's stack, so a check in the middle of
// a walk leaves the state's buffers alone.
constexpr uint64_t kEntriesPerRead = 256;

bool OverlapsL2Tables(CheckState& s, const Range& r) {
  const uint64_t cs = s.cluster_size();
  uint8_t entries[kEntriesPerRead * 8];
  for (uint64_t first = 0; first < s.image.l1_entries; first += kEntriesPerRead) {
    const uint64_t left = s.image.l1_entries - first;
    const uint64_t n = left < kEntriesPerRead ? left : kEntriesPerRead;
    if (!s.io->Read(s.image.l1_offset + first * 8, n * 8, entries)) return false;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t l2 = base::LoadBe64(entries + i * 8) & qcow2::kOffsetMask;
      if (l2 != 0 && r.Overlaps(l2, cs)) return true;
    }
  }
  return false;
}

bool OverlapsRefblocks(CheckState& s, const Range& r, uint64_t table_offset,
                       uint64_t table_entries) {
  const uint64_t cs = s.cluster_size();
  uint8_t entries[kEntriesPerRead * 8];
  for (uint64_t first = 0; first < table_entries; first += kEntriesPerRead) {
    const uint64_t left = table_entries - first;
    const uint64_t n = left < kEntriesPerRead ? left : kEntriesPerRead;
    if (!s.io->Read(table_offset + first * 8, n * 8, entries)) return false;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t block = base::LoadBe64(entries + i * 8) & qcow2::kRefcountTableOffsetMask;
      if (block != 0 && r.Overlaps(block, cs)) return true;
    }
  }
  return false;
}

}  // namespace

bool OverlapsMetadata(CheckState& s, uint64_t offset, uint64_t size, MetadataKind* kind,
                      uint32_t ignored) {
  if (size == 0) return false;
  const uint64_t cs = s.cluster_size();
  if (offset < cs) {
    *kind = MetadataKind::kHeader;
    return true;
  }
  const uint64_t start = offset & ~(cs - 1);
  const Range r(start, ((offset - start) + size + cs - 1) & ~(cs - 1));
  const Qcow2Image& im = s.image;
  const auto found = [&](MetadataKind k) {
    *kind = k;
    return true;
  };
  const auto checked = [&](MetadataKind k) { return (ignored & OverlapBit(k)) == 0; };
  if (checked(MetadataKind::kActiveL1) && r.Overlaps(im.l1_offset, uint64_t{im.l1_entries} * 8)) {
    return found(MetadataKind::kActiveL1);
  }
  if (checked(MetadataKind::kActiveL2) && OverlapsL2Tables(s, r)) {
    return found(MetadataKind::kActiveL2);
  }
  if (r.Overlaps(s.original_reftable_offset, s.original_reftable_entries * 8)) {
    return found(MetadataKind::kRefcountTable);
  }
  if (OverlapsRefblocks(s, r, s.original_reftable_offset, s.original_reftable_entries)) {
    return found(MetadataKind::kRefcountBlock);
  }
  SnapshotReader snapshots(*s.io, im);
  SnapshotEntry entry;
  bool inactive_l1 = false;
  while (snapshots.Next(&entry)) {
    if (r.Overlaps(entry.l1_offset, uint64_t{entry.l1_entries} * 8)) inactive_l1 = true;
  }
  if (r.Overlaps(im.snapshots_offset, snapshots.table_bytes())) {
    return found(MetadataKind::kSnapshotTable);
  }
  if (inactive_l1) return found(MetadataKind::kInactiveL1);
  if ((im.header.autoclear_features & kAutoclearBitmaps) != 0 &&
      r.Overlaps(im.bitmap_directory_offset, im.bitmap_directory_bytes)) {
    return found(MetadataKind::kBitmapDirectory);
  }
  return false;
}

}  // namespace instar::check
