#include "crates/qcow2/bitmaps.h"

#include "crates/base/checked.h"

namespace instar::qcow2 {

using base::Fail;

base::Result<BitmapsExtension, BitmapError> ParseBitmapsExtension(base::ByteView data,
                                                                  uint64_t cluster_size) {
  if (data.size() != kBitmapsExtensionBytes) return Fail(BitmapError::kLength);
  BitmapsExtension e;
  uint32_t reserved = 0;
  data.Be32(0, &e.count);
  data.Be32(4, &reserved);
  data.Be64(8, &e.directory_size);
  data.Be64(16, &e.directory_offset);
  if (reserved != 0) return Fail(BitmapError::kReserved);
  if (e.count == 0) return Fail(BitmapError::kEmpty);
  if (e.count > kMaxBitmaps) return Fail(BitmapError::kTooMany, e.count);
  if (e.directory_offset % cluster_size != 0) return Fail(BitmapError::kDirectoryOffset);
  if (e.directory_size > kMaxBitmapDirectoryBytes) {
    return Fail(BitmapError::kDirectoryTooLarge, e.directory_size);
  }
  return e;
}

base::Result<BitmapEntry, BitmapError> ParseBitmapEntry(base::ByteView directory,
                                                        uint64_t offset) {
  if (!directory.Has(offset, kBitmapEntryFixedBytes)) return Fail(BitmapError::kBroken);
  BitmapEntry b;
  uint16_t name_size = 0;
  uint32_t extra = 0;
  directory.Be64(offset, &b.table_offset);
  directory.Be32(offset + 8, &b.table_size);
  directory.Be32(offset + 12, &b.flags);
  b.type = directory.data()[offset + 16];
  b.granularity_bits = directory.data()[offset + 17];
  directory.Be16(offset + 18, &name_size);
  directory.Be32(offset + 20, &extra);
  uint64_t name_at = 0, end = 0, padded = 0;
  if (!base::CheckedAdd(offset + kBitmapEntryFixedBytes, extra, &name_at) ||
      !base::CheckedAdd(name_at, name_size, &end) || end > directory.size() ||
      !base::CheckedAlignUp(end - offset, 8, &padded) || padded > directory.size() - offset) {
    return Fail(BitmapError::kBroken);
  }
  b.name_offset = name_at;
  b.name_length = name_size;
  b.entry_size = padded;
  return b;
}

bool SatisfiesConstraints(const BitmapEntry& entry, uint64_t cluster_size) {
  return entry.type == kBitmapTypeDirty && entry.granularity_bits >= kMinGranularityBits &&
         entry.granularity_bits <= kMaxGranularityBits &&
         (entry.flags & ~(kBitmapInUse | kBitmapAuto)) == 0 && entry.name_length != 0 &&
         entry.name_length <= kMaxBitmapNameBytes && entry.table_offset % cluster_size == 0;
}

}  // namespace instar::qcow2
