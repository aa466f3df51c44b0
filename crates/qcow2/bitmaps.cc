#include "crates/qcow2/bitmaps.h"

#include "crates/base/checked.h"

namespace instar::qcow2 {

using base::Fail;

base::Result<BitmapsExtension, BitmapError> ParseBitmapsExtension(base::ByteView data,
                                                                  uint64_t cluster_size) {
  if (data.size() != kBitmapsExtensionBytes) return Fail(BitmapError::kBadExtension);
  BitmapsExtension e;
  uint32_t reserved = 0;
  data.Be32(0, &e.count);
  data.Be32(4, &reserved);
  data.Be64(8, &e.directory_size);
  data.Be64(16, &e.directory_offset);
  if (reserved != 0 || e.count == 0 || e.count > kMaxBitmaps ||
      e.directory_size > kMaxBitmapDirectoryBytes ||
      e.directory_size < uint64_t{e.count} * kBitmapEntryFixedBytes ||
      e.directory_offset % cluster_size != 0) {
    return Fail(BitmapError::kBadExtension);
  }
  return e;
}

base::Result<BitmapEntry, BitmapError> ParseBitmapEntry(base::ByteView directory,
                                                        uint64_t offset) {
  if (!directory.Has(offset, kBitmapEntryFixedBytes)) return Fail(BitmapError::kBadDirectory);
  BitmapEntry b;
  uint16_t name_size = 0;
  uint32_t extra = 0;
  directory.Be32(offset + 12, &b.flags);
  b.type = directory.data()[offset + 16];
  b.granularity_bits = directory.data()[offset + 17];
  directory.Be16(offset + 18, &name_size);
  directory.Be32(offset + 20, &extra);
  if (name_size == 0 || name_size > kMaxBitmapNameBytes) return Fail(BitmapError::kBadDirectory);
  uint64_t name_at = 0, end = 0, padded = 0;
  if (!base::CheckedAdd(offset + kBitmapEntryFixedBytes, extra, &name_at) ||
      !base::CheckedAdd(name_at, name_size, &end) || end > directory.size() ||
      !base::CheckedAlignUp(end - offset, 8, &padded)) {
    return Fail(BitmapError::kBadDirectory);
  }
  b.name_offset = name_at;
  b.name_length = name_size;
  b.entry_size = padded;
  return b;
}

}  // namespace instar::qcow2
