#include "crates/qcow2/header.h"

#include "crates/base/checked.h"

namespace instar::qcow2 {
namespace {

using base::Fail;

struct Fixed {
  Header h;
  uint64_t backing_offset = 0;
  uint32_t backing_size = 0;
  uint64_t ext_end = 0;  // end of the extension area
};

// The fields every version has, plus v3's, with the checks qemu makes before it reads any
// extension.
base::Result<Fixed, HeaderError> ParseFixed(base::ByteView bytes) {
  uint32_t magic = 0;
  if (!bytes.Be32(0, &magic) || magic != kMagic) return Fail(HeaderError::kNotQcow2);
  // The caller zero-fills past the end of the file, so a short view is a caller bug; treat it
  // as a bad magic rather than reading out of range.
  if (!bytes.Has(0, kV3MinHeaderLength)) return Fail(HeaderError::kNotQcow2);
  Fixed f;
  Header& h = f.h;
  bytes.Be32(4, &h.version);
  bytes.Be64(8, &f.backing_offset);
  bytes.Be32(16, &f.backing_size);
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
    bytes.Be64(72, &h.incompatible_features);
    bytes.Be64(80, &h.compatible_features);
    bytes.Be64(88, &h.autoclear_features);
    bytes.Be32(96, &h.refcount_order);
    bytes.Be32(100, &h.header_length);
    if (h.header_length < kV3MinHeaderLength) return Fail(HeaderError::kHeaderTooShort);
    if (h.header_length > h.cluster_size) return Fail(HeaderError::kHeaderTooLong);
    if (h.header_length > 104 && bytes.Has(104, 1)) h.compression_type = bytes.data()[104];
  }
  if (f.backing_offset > h.cluster_size) return Fail(HeaderError::kInvalidBackingFileOffset);
  f.ext_end = f.backing_offset != 0 ? f.backing_offset : h.cluster_size;
  if (f.ext_end > bytes.size()) f.ext_end = bytes.size();
  return f;
}

// Walks the extension area [start, end) of `bytes`. Each extension takes at least 8 bytes,
// so the loop is bounded by the area's size.
base::Status<HeaderError> ParseExtensions(base::ByteView bytes, uint64_t start, uint64_t end,
                                          Header* h) {
  uint64_t off = start;
  while (off < end) {
    // Even the end marker must fit: qemu checks the length before the type.
    if (end - off < 8) return Fail(HeaderError::kBadExtension);
    uint32_t type = 0, length = 0;
    bytes.Be32(off, &type);
    bytes.Be32(off + 4, &length);
    const uint64_t data = off + 8;
    if (length > end - data) return Fail(HeaderError::kBadExtension);
    if (type == kExtEnd) return {};
    const ByteRange range{data, length};
    switch (type) {
      case kExtBackingFormat:
        if (length > kMaxFormatNameBytes) return Fail(HeaderError::kBackingFormatTooLong, length);
        h->backing_format = range;
        break;
      case kExtFeatureNames: h->feature_names = range; break;
      case kExtBitmaps: h->bitmaps_extension = range; break;
      case kExtFullDiskEncryption: {
        if (h->crypt_method != kCryptLuks) return Fail(HeaderError::kCryptoExtensionUnexpected);
        if (length != 16) return Fail(HeaderError::kCryptoExtensionSize, length);
        bytes.Be64(data, &h->crypto_header.offset);
        bytes.Be64(data + 8, &h->crypto_header.length);
        h->has_crypto_extension = true;
        if (h->crypto_header.offset % h->cluster_size != 0) {
          return Fail(HeaderError::kCryptoHeaderUnaligned, h->crypto_header.offset);
        }
        break;
      }
      case kExtExternalDataFile: h->external_data_file = range; break;
      default: break;  // unknown extensions are ignored, as the spec requires
    }
    off = data + ((uint64_t{length} + 7) & ~uint64_t{7});
  }
  return {};
}

// qemu's table offset check: cluster aligned, and the table's end fits in an int64.
bool TableOffsetValid(const Header& h, uint64_t offset, uint64_t entries, uint64_t entry_bytes) {
  uint64_t bytes = 0, end = 0;
  if (!base::CheckedMul(entries, entry_bytes, &bytes) || !base::CheckedAdd(offset, bytes, &end) ||
      end > 0x7FFFFFFFFFFFFFFFull) {
    return false;
  }
  return (offset & (h.cluster_size - 1)) == 0;
}

// Entries of L1 needed to map `size` bytes, with qemu's unsigned wrap-around.
uint64_t L1EntriesFor(const Header& h, uint64_t size) {
  const uint32_t l2_bits = h.cluster_bits - ((h.incompatible_features & kIncompatExtendedL2) ? 4 : 3);
  const uint32_t shift = h.cluster_bits + l2_bits;
  return (size + (uint64_t{1} << shift) - 1) >> shift;
}

}  // namespace

base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes, OpenMode mode) {
  TRY(Fixed f, ParseFixed(bytes));
  Header& h = f.h;
  if (h.compression_type > kCompressionZstd) {
    return Fail(HeaderError::kCompressionTypeInvalid, h.compression_type);
  }
  const bool compression_bit = (h.incompatible_features & kIncompatCompression) != 0;
  if (h.compression_type == kCompressionZlib && compression_bit) {
    return Fail(HeaderError::kCompressionBitSet);
  }
  if (h.compression_type != kCompressionZlib && !compression_bit) {
    return Fail(HeaderError::kCompressionBitMissing);
  }
  if ((h.incompatible_features & ~kIncompatKnown) != 0) {
    return Fail(HeaderError::kUnsupportedFeatures, h.incompatible_features & ~kIncompatKnown);
  }
  if (h.refcount_order > 6) return Fail(HeaderError::kRefcountOrderTooLarge, h.refcount_order);
  if (h.crypt_method > kCryptLuks) return Fail(HeaderError::kBadEncryptionMethod, h.crypt_method);

  if (h.refcount_table_clusters > (kMaxRefcountTableBytes >> h.cluster_bits)) {
    return Fail(HeaderError::kRefcountTableTooLarge);
  }
  const bool check_mode = mode == OpenMode::kCheck;
  if (h.refcount_table_clusters == 0 && !check_mode) return Fail(HeaderError::kNoRefcountTable);
  if (!TableOffsetValid(h, h.refcount_table_offset, h.refcount_table_clusters, h.cluster_size)) {
    return Fail(HeaderError::kRefcountTableOffsetInvalid);
  }
  if (!check_mode && h.nb_snapshots > 65536) return Fail(HeaderError::kSnapshotTableTooLarge);
  if (!check_mode && !TableOffsetValid(h, h.snapshots_offset, h.nb_snapshots, 40)) {
    return Fail(HeaderError::kSnapshotTableOffsetInvalid);
  }
  // qemu validates the table (size, then offset) before it compares it with the image size.
  if (h.l1_size > kMaxL1Bytes / 8) return Fail(HeaderError::kL1TableTooLarge);
  if (!TableOffsetValid(h, h.l1_table_offset, h.l1_size, 8)) {
    return Fail(HeaderError::kL1TableOffsetInvalid);
  }
  const uint64_t l1_needed = L1EntriesFor(h, h.size);
  if (l1_needed > 0x7FFFFFFF) return Fail(HeaderError::kImageTooBig);
  if (h.l1_size < l1_needed) return Fail(HeaderError::kL1TableTooSmall);
  if (h.l1_size != 0 && h.l1_table_offset + uint64_t{h.l1_size} * 8 > kMaxImageBytes) {
    return Fail(HeaderError::kL1TableUnreadable);
  }

  if (f.ext_end > h.header_length) {
    TRY_STATUS(ParseExtensions(bytes, h.header_length, f.ext_end, &h));
  }
  if (h.crypt_method == kCryptLuks && !h.has_crypto_extension) {
    return Fail(HeaderError::kCryptoHeaderMissing);
  }
  if (f.backing_offset != 0) {
    // qemu opens a name that fills the header cluster to its last byte (its own header
    // update writes one).
    uint64_t limit = h.cluster_size - f.backing_offset;
    if (limit > kMaxBackingFileBytes) limit = kMaxBackingFileBytes;
    if (f.backing_size > limit) return Fail(HeaderError::kBackingFileTooLong, f.backing_size);
    // Within the first cluster by now; a caller that passed less than the whole cluster
    // parses again with all of it (see ParseHeader).
    if (!bytes.Has(f.backing_offset, f.backing_size) && bytes.size() >= h.cluster_size) {
      return Fail(HeaderError::kBackingFileTooLong, f.backing_size);
    }
    h.backing_file = {f.backing_offset, f.backing_size};
  }
  if ((h.size & ~uint64_t{511}) > kMaxImageBytes) return Fail(HeaderError::kImageTooLarge);
  return h;
}

ByteRange FindFeatureNameTable(base::ByteView bytes) {
  auto f = ParseFixed(bytes);
  if (!f.ok() || f.value().ext_end <= f.value().h.header_length) return {};
  Header h = f.value().h;
  if (!ParseExtensions(bytes, h.header_length, f.value().ext_end, &h).ok()) return {};
  return h.feature_names;
}

}  // namespace instar::qcow2
