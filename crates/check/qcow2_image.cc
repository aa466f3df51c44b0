#include "crates/check/qcow2_image.h"

#include "crates/base/checked.h"

namespace instar::check {
namespace {

using abi::CheckError;
using base::Fail;

}  // namespace

// qemu's validate_table_offset: the table must be cluster aligned and its end representable.
bool TableOffsetValid(uint64_t offset, uint64_t entries, uint64_t entry_bytes,
                      uint64_t cluster_size) {
  uint64_t bytes = 0, end = 0;
  if (!base::CheckedMul(entries, entry_bytes, &bytes) || !base::CheckedAdd(offset, bytes, &end) ||
      end > INT64_MAX) {
    return false;
  }
  return (offset & (cluster_size - 1)) == 0;
}

base::Result<Qcow2Image, CheckError> OpenQcow2(base::ByteView first_cluster, uint64_t file_size) {
  auto parsed = qcow2::ParseHeader(first_cluster, qcow2::OpenMode::kCheck);
  // qemu's open-time message comes from the host, which asks the info operation (the one
  // place that knows them all).
  if (!parsed.ok()) {
    return Fail(CheckError::kQcow2HeaderRefused, static_cast<uint64_t>(parsed.error().code));
  }
  Qcow2Image image;
  image.header = parsed.value();
  const qcow2::Header& h = image.header;
  image.geometry = qcow2::GeometryOf(h);
  image.file_size = file_size;
  if (h.data_file_raw_without_data_file()) return Fail(CheckError::kDataFileRawWithoutDataFile);
  if (h.crypt_method != 0) return Fail(CheckError::kEncrypted, h.crypt_method);
  // qemu ignores a data-file extension unless the incompatible bit says the data is there.
  if ((h.incompatible_features & qcow2::kIncompatExternalData) != 0) {
    return Fail(CheckError::kExternalDataFile);
  }
  const uint64_t cs = image.cluster_size();
  // Reference count table (qemu: refcount_table_clusters <= 8 MiB worth).
  if (h.refcount_table_clusters > qcow2::kMaxRefcountTableBytes / cs) {
    return Fail(CheckError::kReftableTooLarge);
  }
  if (!TableOffsetValid(h.refcount_table_offset, h.refcount_table_clusters, cs, cs)) {
    return Fail(CheckError::kReftableInvalid);
  }
  image.reftable_offset = h.refcount_table_offset;
  image.reftable_entries = uint64_t{h.refcount_table_clusters} * (cs / 8);
  // Active L1 table. qemu computes the entries a size needs in wrapping 64-bit arithmetic.
  if (h.l1_size > qcow2::kMaxL1Bytes / 8) return Fail(CheckError::kL1TooLarge);
  const uint64_t per_l2 = qcow2::BytesPerL2(image.geometry);
  const uint64_t needed = (h.size + per_l2 - 1) / per_l2;
  if (needed > INT32_MAX) return Fail(CheckError::kImageTooBig);
  if (h.l1_size < needed) return Fail(CheckError::kL1TooSmall);
  if (!TableOffsetValid(h.l1_table_offset, h.l1_size, 8, cs)) {
    return Fail(CheckError::kL1Invalid);
  }
  // qemu reads the active L1 table while opening the image.
  if (h.l1_size != 0 && (h.l1_table_offset > kBlockLayerMaxLength ||
                         uint64_t{h.l1_size} * 8 > kBlockLayerMaxLength - h.l1_table_offset)) {
    return Fail(CheckError::kL1ReadFailed);
  }
  image.l1_offset = h.l1_table_offset;
  image.l1_entries = h.l1_size;
  // The block layer's length limit (INT64_MAX rounded down to its largest alignment).
  if (h.size > (static_cast<uint64_t>(INT64_MAX) & ~((uint64_t{1} << 30) - 1))) {
    return Fail(CheckError::kVirtualSizeTooLarge);
  }
  // Bitmaps count only while the autoclear bit says they are consistent.
  if (h.bitmaps_extension.length >= 24 && (h.autoclear_features & kAutoclearBitmaps) == 0 &&
      h.version >= 3) {
    image.bitmaps_inconsistent = true;
  }
  if (h.bitmaps_extension.length >= 24 && (h.autoclear_features & kAutoclearBitmaps) != 0) {
    const base::ByteView ext = first_cluster.Sub(h.bitmaps_extension.offset, 24);
    uint32_t count = 0;
    uint64_t dir_bytes = 0, dir_offset = 0;
    if (ext.Be32(0, &count) && ext.Be64(8, &dir_bytes) && ext.Be64(16, &dir_offset) &&
        count != 0) {
      image.has_bitmaps = true;
      image.bitmap_count = count;
      image.bitmap_directory_bytes = dir_bytes;
      image.bitmap_directory_offset = dir_offset;
    }
  }
  return image;
}

bool SnapshotReader::ReadText(uint64_t offset, uint32_t length, char* out, uint32_t* out_len) {
  uint32_t n = length < abi::kSnapshotTextBytes - 1 ? length : abi::kSnapshotTextBytes - 1;
  if (!io_.Read(offset, n, reinterpret_cast<uint8_t*>(out))) {
    io_failed_ = true;
    return false;
  }
  out[n] = '\0';
  // qemu holds the text as a C string: it ends at its first NUL.
  uint32_t used = 0;
  while (used < n && out[used] != '\0') ++used;
  *out_len = used;
  return true;
}

bool SnapshotReader::Next(SnapshotEntry* entry) {
  if (done_ >= count_) return false;
  // Offsets stay below 2^63 + 65536 * (40 + 4 GiB + 128 KiB): no wrap-around; reads past
  // qemu's block-layer limit fail.
  if (!io_.Read(offset_, kSnapshotHeaderBytes, entry->header)) {
    io_failed_ = true;
    return false;
  }
  const base::ByteView v(entry->header, kSnapshotHeaderBytes);
  uint16_t id_size = 0, name_size = 0;
  v.Be64(0, &entry->l1_offset);
  v.Be32(8, &entry->l1_entries);
  v.Be16(12, &id_size);
  v.Be16(14, &name_size);
  v.Be32(36, &entry->extra_bytes);
  entry->extra_offset = offset_ + kSnapshotHeaderBytes;
  entry->id_offset = entry->extra_offset + entry->extra_bytes;
  entry->id_size = id_size;
  entry->name_offset = entry->id_offset + id_size;
  entry->name_size = name_size;
  entry->end = entry->name_offset + name_size;
  if (!ReadText(entry->id_offset, id_size, entry->id, &entry->id_len) ||
      !ReadText(entry->name_offset, name_size, entry->name, &entry->name_len)) {
    return false;
  }
  end_ = entry->end;
  offset_ = (entry->end + 7) & ~uint64_t{7};
  ++done_;
  return true;
}

}  // namespace instar::check
