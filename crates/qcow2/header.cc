#include "crates/qcow2/header.h"

#include "crates/base/checked.h"

namespace instar::qcow2 {
namespace {

using base::Fail;

// Reads the extension area [start, end) of `bytes`.
base::Status<HeaderError> ParseExtensions(base::ByteView bytes, uint64_t start, uint64_t end,
                                          Header* h) {
  uint64_t off = start;
  // Each extension takes at least 8 bytes, so the loop is bounded by the header area.
  while (off + 8 <= end) {
    uint32_t type = 0, length = 0;
    if (!bytes.Be32(off, &type) || !bytes.Be32(off + 4, &length)) {
      return Fail(HeaderError::kTruncated);
    }
    if (type == kExtEnd) return {};
    const uint64_t data = off + 8;
    if (length > end - data) return Fail(HeaderError::kBadExtension);
    const ByteRange range{data, length};
    switch (type) {
      case kExtBackingFormat: h->backing_format = range; break;
      case kExtFeatureNames: h->feature_names = range; break;
      case kExtBitmaps: h->bitmaps_extension = range; break;
      case kExtFullDiskEncryption: h->crypto_extension = range; break;
      case kExtExternalDataFile: h->external_data_file = range; break;
      default: break;  // unknown extensions are ignored, as the spec requires
    }
    off = data + ((uint64_t{length} + 7) & ~uint64_t{7});
  }
  return {};
}

}  // namespace

base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes) {
  uint32_t magic = 0;
  if (!bytes.Be32(0, &magic)) return Fail(HeaderError::kNotQcow2);
  if (magic != kMagic) return Fail(HeaderError::kNotQcow2);
  if (!bytes.Has(0, kV2HeaderLength)) return Fail(HeaderError::kTruncated);
  Header h;
  uint64_t backing_offset = 0;
  uint32_t backing_size = 0;
  bytes.Be32(4, &h.version);
  bytes.Be64(8, &backing_offset);
  bytes.Be32(16, &backing_size);
  bytes.Be32(20, &h.cluster_bits);
  bytes.Be64(24, &h.size);
  bytes.Be32(32, &h.crypt_method);
  bytes.Be32(36, &h.l1_size);
  bytes.Be64(40, &h.l1_table_offset);
  bytes.Be64(48, &h.refcount_table_offset);
  bytes.Be32(56, &h.refcount_table_clusters);
  bytes.Be32(60, &h.nb_snapshots);
  bytes.Be64(64, &h.snapshots_offset);

  if (h.version < 2 || h.version > 3) return Fail(HeaderError::kUnsupportedVersion, h.version);
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return Fail(HeaderError::kInvalidClusterSize, h.cluster_bits);
  }
  h.cluster_size = uint64_t{1} << h.cluster_bits;

  if (h.version == 3) {
    if (!bytes.Has(0, kV3MinHeaderLength)) return Fail(HeaderError::kTruncated);
    bytes.Be64(72, &h.incompatible_features);
    bytes.Be64(80, &h.compatible_features);
    bytes.Be64(88, &h.autoclear_features);
    bytes.Be32(96, &h.refcount_order);
    bytes.Be32(100, &h.header_length);
    if (h.header_length < kV3MinHeaderLength) return Fail(HeaderError::kHeaderTooShort);
    if (h.header_length > h.cluster_size) return Fail(HeaderError::kHeaderTooLong);
    if (h.header_length > 104) {
      if (!bytes.Has(104, 1)) return Fail(HeaderError::kTruncated);
      h.compression_type = bytes.data()[104];
    }
  }
  if (h.refcount_order > 6) return Fail(HeaderError::kRefcountOrderTooLarge, h.refcount_order);

  // Extensions live between the header and the end of the first cluster (or the backing file
  // name, when it comes first).
  uint64_t ext_end = h.cluster_size;
  if (backing_offset != 0 && backing_offset < ext_end) ext_end = backing_offset;
  if (ext_end > bytes.size()) ext_end = bytes.size();
  if (ext_end > h.header_length) {
    TRY_STATUS(ParseExtensions(bytes, h.header_length, ext_end, &h));
  }

  const uint64_t unknown = h.incompatible_features & ~kIncompatKnown;
  if (unknown != 0) return Fail(HeaderError::kUnsupportedFeatures, unknown);
  if (h.crypt_method > 2) return Fail(HeaderError::kBadEncryptionMethod, h.crypt_method);

  if (backing_offset != 0) {
    uint64_t end = 0;
    if (backing_size > kMaxBackingFileBytes || !base::CheckedAdd(backing_offset, backing_size, &end) ||
        end > h.cluster_size) {
      return Fail(HeaderError::kBackingFileTooLong, backing_size);
    }
    if (!bytes.Has(backing_offset, backing_size)) return Fail(HeaderError::kTruncated);
    h.backing_file = {backing_offset, backing_size};
  }
  return h;
}

}  // namespace instar::qcow2
