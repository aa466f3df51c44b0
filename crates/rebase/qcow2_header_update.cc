#include "crates/rebase/qcow2_header_update.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"

namespace instar::rebase {
namespace {

// sizeof(QCowHeader) in qemu 7.2: the v3 fields, the compression type and 7 bytes of padding.
constexpr uint64_t kQemuHeaderBytes = 112;
constexpr uint64_t kExtensionHeaderBytes = 8;
// qemu leaves the feature name table out of images with clusters of 4 KiB or less.
constexpr uint64_t kFeatureTableMinCluster = 4096;
constexpr uint64_t kAutoclearBitmaps = 1u << 0;
constexpr uint64_t kAutoclearKnown = kAutoclearBitmaps | qcow2::kAutoclearDataFileRaw;

struct FeatureEntry {
  uint8_t type;
  uint8_t bit;
  const char* name;
};
// qemu 7.2's table, in its order.
constexpr FeatureEntry kFeatureTable[] = {
    {0, 0, "dirty bit"},          {0, 1, "corrupt bit"},
    {0, 2, "external data file"}, {0, 3, "compression type"},
    {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},            {2, 1, "raw external data"},
};
constexpr uint64_t kFeatureEntryBytes = 48;

uint64_t Pad8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

// Appends extensions to the cluster being built; remembers when one did not fit.
class ExtensionWriter {
 public:
  ExtensionWriter(uint8_t* out, uint64_t start, uint64_t end)
      : out_(out), at_(start), end_(end) {}

  // Reserves room for an extension of `length` data bytes and returns where its data goes.
  uint8_t* Add(uint32_t magic, uint64_t length) {
    const uint64_t total = kExtensionHeaderBytes + Pad8(length);
    if (!fits_ || length > end_ || end_ - at_ < total) {
      fits_ = false;
      return nullptr;
    }
    base::StoreBe32(out_ + at_, magic);
    base::StoreBe32(out_ + at_ + 4, static_cast<uint32_t>(length));
    uint8_t* data = out_ + at_ + kExtensionHeaderBytes;
    at_ += total;
    return data;
  }
  void AddCopy(uint32_t magic, base::ByteView data) {
    uint8_t* to = Add(magic, data.size());
    for (uint64_t i = 0; to != nullptr && i < data.size(); ++i) to[i] = data.data()[i];
  }
  bool fits() const { return fits_; }
  uint64_t at() const { return at_; }

 private:
  uint8_t* out_;
  uint64_t at_;
  uint64_t end_;
  bool fits_ = true;
};

// Where the extensions end: the backing file name, or the end of the cluster.
uint64_t ExtensionAreaEnd(const qcow2::Header& header) {
  if (header.backing_file.length != 0 && header.backing_file.offset < header.cluster_size) {
    return header.backing_file.offset;
  }
  return header.cluster_size;
}

void AddFeatureTable(ExtensionWriter& w) {
  uint8_t* table = w.Add(qcow2::kExtFeatureNames, sizeof kFeatureTable / sizeof kFeatureTable[0] *
                                                      kFeatureEntryBytes);
  if (table == nullptr) return;
  for (const FeatureEntry& e : kFeatureTable) {
    table[0] = e.type;
    table[1] = e.bit;
    for (uint64_t i = 0; e.name[i] != '\0'; ++i) table[2 + i] = static_cast<uint8_t>(e.name[i]);
    table += kFeatureEntryBytes;
  }
}

// Copies the extensions qemu keeps without knowing them, in file order.
base::Status<PlanError> AddUnknownExtensions(base::ByteView head, const qcow2::Header& header,
                                             ExtensionWriter& w) {
  const uint64_t end = ExtensionAreaEnd(header);
  uint64_t at = header.version >= 3 ? header.header_length : qcow2::kV2HeaderLength;
  // Each extension takes at least 8 bytes, which bounds the loop by the cluster size.
  while (at < end) {
    uint32_t magic = 0;
    uint32_t length = 0;
    if (end - at < kExtensionHeaderBytes || !head.Be32(at, &magic) || !head.Be32(at + 4, &length)) {
      return base::Fail(PlanError::kOverlayCorrupt, at);
    }
    at += kExtensionHeaderBytes;
    if (length > end - at) return base::Fail(PlanError::kOverlayCorrupt, at);
    switch (magic) {
      case qcow2::kExtEnd: return {};
      case qcow2::kExtBackingFormat:
      case qcow2::kExtFeatureNames:
      case qcow2::kExtBitmaps:
      case qcow2::kExtFullDiskEncryption:
      case qcow2::kExtExternalDataFile:
        break;
      default:
        w.AddCopy(magic, head.Sub(at, length));
        break;
    }
    at += Pad8(length);
  }
  return {};
}

}  // namespace

base::Status<PlanError> BuildQcow2Header(base::ByteView head, const qcow2::Header& header,
                                         const NewBacking& backing, uint8_t* out) {
  // What qemu refuses or repairs when it opens the image read/write.
  if ((header.incompatible_features & qcow2::kIncompatCorrupt) != 0) {
    return base::Fail(PlanError::kImageCorruptFlag);
  }
  if ((header.incompatible_features & qcow2::kIncompatDirty) != 0) {
    return base::Fail(PlanError::kDirtyImage);
  }
  if (header.crypt_method != qcow2::kCryptNone) return base::Fail(PlanError::kEncrypted);
  // qcow2_change_backing_file's refusals.
  const bool has_data_file = (header.incompatible_features & qcow2::kIncompatExternalData) != 0;
  if (backing.name.size() != 0 && has_data_file &&
      (header.autoclear_features & qcow2::kAutoclearDataFileRaw) != 0) {
    return base::Fail(PlanError::kRawExternalData);
  }
  if (backing.name.size() > qcow2::kMaxBackingFileBytes) {
    return base::Fail(PlanError::kBackingPathTooLong, backing.name.size());
  }
  const uint64_t cluster = header.cluster_size;
  if (head.size() < cluster || cluster < kQemuHeaderBytes) {
    return base::Fail(PlanError::kOverlayCorrupt, 0);
  }
  for (uint64_t i = 0; i < cluster; ++i) out[i] = 0;

  base::StoreBe32(out + 0, qcow2::kMagic);
  base::StoreBe32(out + 4, header.version);
  base::StoreBe32(out + 20, header.cluster_bits);
  // qemu keeps the size in whole sectors.
  base::StoreBe64(out + 24, header.size & ~uint64_t{511});
  base::StoreBe32(out + 32, header.crypt_method);
  base::StoreBe32(out + 36, header.l1_size);
  base::StoreBe64(out + 40, header.l1_table_offset);
  base::StoreBe64(out + 48, header.refcount_table_offset);
  base::StoreBe32(out + 56, header.refcount_table_clusters);
  base::StoreBe32(out + 60, header.nb_snapshots);
  base::StoreBe64(out + 64, header.snapshots_offset);
  uint64_t at = qcow2::kV2HeaderLength;
  if (header.version >= 3) {
    // Header fields beyond qemu's struct are kept, and counted in header_length.
    const uint64_t unknown_fields =
        header.header_length > kQemuHeaderBytes ? header.header_length - kQemuHeaderBytes : 0;
    base::StoreBe64(out + 72, header.incompatible_features);
    base::StoreBe64(out + 80, header.compatible_features);
    // qemu clears the autoclear bits it does not know when it opens an image read/write.
    base::StoreBe64(out + 88, header.autoclear_features & kAutoclearKnown);
    base::StoreBe32(out + 96, header.refcount_order);
    base::StoreBe32(out + 100, static_cast<uint32_t>(kQemuHeaderBytes + unknown_fields));
    out[104] = header.compression_type;
    for (uint64_t i = 0; i < unknown_fields; ++i) {
      out[kQemuHeaderBytes + i] = head.data()[kQemuHeaderBytes + i];
    }
    at = kQemuHeaderBytes + unknown_fields;
  }

  ExtensionWriter w(out, at, cluster);
  if (backing.name.size() != 0 && backing.format.size() != 0) {
    w.AddCopy(qcow2::kExtBackingFormat, backing.format);
  }
  if (has_data_file && header.external_data_file.length != 0) {
    w.AddCopy(qcow2::kExtExternalDataFile,
              head.Sub(header.external_data_file.offset, header.external_data_file.length));
  }
  if (header.version >= 3 && cluster > kFeatureTableMinCluster) AddFeatureTable(w);
  // qemu drops a bitmaps extension whose autoclear bit is clear (the bitmaps are stale).
  if (header.bitmaps_extension.length != 0 &&
      (header.autoclear_features & kAutoclearBitmaps) != 0) {
    w.AddCopy(qcow2::kExtBitmaps,
              head.Sub(header.bitmaps_extension.offset, header.bitmaps_extension.length));
  }
  TRY_STATUS(AddUnknownExtensions(head, header, w));
  w.Add(qcow2::kExtEnd, 0);
  if (!w.fits()) return base::Fail(PlanError::kHeaderNoSpace);

  const uint64_t name_at = w.at();
  if (backing.name.size() != 0) {
    if (cluster - name_at < backing.name.size()) return base::Fail(PlanError::kHeaderNoSpace);
    for (uint64_t i = 0; i < backing.name.size(); ++i) out[name_at + i] = backing.name.data()[i];
    base::StoreBe64(out + 8, name_at);
    base::StoreBe32(out + 16, static_cast<uint32_t>(backing.name.size()));
  }
  return {};
}

}  // namespace instar::rebase
