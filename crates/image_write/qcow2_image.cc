#include "crates/image_write/qcow2_image.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"

namespace instar::image_write {
namespace {

base::Error<OpenFailure> Refuse(PlanError e, unsigned long long detail = 0) {
  OpenFailure f;
  f.plan_error = e;
  return base::Fail(f, detail);
}

// True when [offset, offset + length) is cluster aligned at its start and inside the file.
bool InFile(const Qcow2Image& image, uint64_t offset, uint64_t length) {
  uint64_t end = 0;
  return (offset & (image.geometry.cluster_size - 1)) == 0 &&
         base::CheckedAdd(offset, length, &end) && end <= image.file_size;
}

}  // namespace

base::Result<Qcow2Image, OpenFailure> OpenQcow2(const ImageReader& reader, base::ByteView head,
                                                base::Arena& arena) {
  auto parsed = qcow2::ParseHeader(head);
  if (!parsed.ok()) {
    OpenFailure f;
    f.header_failed = true;
    f.header_error = parsed.error().code;
    return base::Fail(f, parsed.error().detail);
  }
  Qcow2Image image;
  image.header = parsed.value();
  image.geometry = qcow2::GeometryOf(image.header);
  image.file_size = reader.size;
  const qcow2::Header& h = image.header;
  const uint64_t cs = image.geometry.cluster_size;

  if (h.incompatible_features & qcow2::kIncompatCorrupt) return Refuse(PlanError::kImageCorruptFlag);
  if (h.incompatible_features & qcow2::kIncompatDirty) return Refuse(PlanError::kDirtyImage);
  if (h.incompatible_features & qcow2::kIncompatExternalData) {
    return Refuse(PlanError::kExternalDataFile);
  }
  if (h.crypt_method != 0) return Refuse(PlanError::kEncrypted, h.crypt_method);

  // Refcount table: aligned, inside the file, within qemu's cap.
  uint64_t table_bytes = 0;
  if (!base::CheckedMul(h.refcount_table_clusters, cs, &table_bytes) || table_bytes == 0 ||
      table_bytes > qcow2::kMaxRefcountTableBytes ||
      !InFile(image, h.refcount_table_offset, table_bytes)) {
    return Refuse(PlanError::kCorruptRefcountTable, h.refcount_table_offset);
  }
  image.refcount_table_entries = table_bytes / 8;
  uint8_t* raw = arena.Allocate(table_bytes, 512);
  if (raw == nullptr) return Refuse(PlanError::kScratchTooSmall);
  if (!reader.Read(h.refcount_table_offset, table_bytes, raw)) return Refuse(PlanError::kIoError);
  image.refcount_table = reinterpret_cast<uint64_t*>(raw);
  for (uint64_t i = 0; i < image.refcount_table_entries; ++i) {
    const uint64_t entry = base::LoadBe64(raw + 8 * i);
    const uint64_t offset = entry & qcow2::kRefcountTableOffsetMask;
    if (offset != 0 && !InFile(image, offset, cs)) {
      return Refuse(PlanError::kCorruptRefcountTable, offset);
    }
    image.refcount_table[i] = offset;
  }

  // L1 table: inside the file, within qemu's cap, large enough for the virtual size.
  uint64_t l1_bytes = uint64_t{h.l1_size} * 8;
  uint64_t needed = 0;
  if (l1_bytes > qcow2::kMaxL1Bytes || !qcow2::L1EntriesFor(image.geometry, h.size, &needed) ||
      needed > h.l1_size || (h.l1_size != 0 && !InFile(image, h.l1_table_offset, l1_bytes))) {
    return Refuse(PlanError::kCorruptL1, h.l1_table_offset);
  }
  image.l1_clusters = h.l1_size == 0 ? 0 : base::DivRoundUp(l1_bytes, cs);
  return image;
}

}  // namespace instar::image_write
