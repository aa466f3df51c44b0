// The qcow2 header (QEMU's qcow2 specification, "Header" and "Header extensions") parsed into
// an immutable model, with the open-time checks qemu applies, in qemu's order, so the first
// failure is the one qemu-img reports. Pure and freestanding: input is the first cluster of the
// file (bytes past the end of the file read as zeros, as qemu's do), output a Header or an
// error. No allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::qcow2 {

inline constexpr uint32_t kMagic = 0x514649FB;  // "QFI\xfb"
inline constexpr uint32_t kV2HeaderLength = 72;
inline constexpr uint32_t kV3MinHeaderLength = 104;
inline constexpr uint32_t kMinClusterBits = 9;
inline constexpr uint32_t kMaxClusterBits = 21;
inline constexpr uint32_t kMaxBackingFileBytes = 1023;
inline constexpr uint32_t kMaxFormatNameBytes = 31;
// The block layer's largest image: INT64_MAX aligned down to its 1 GiB maximum alignment.
inline constexpr uint64_t kMaxImageBytes = 0x7FFFFFFFC0000000ull;
// qemu's table limits: 32 MiB of active L1, 8 MiB of refcount table.
inline constexpr uint64_t kMaxL1Bytes = 32u << 20;
inline constexpr uint64_t kMaxRefcountTableBytes = 8u << 20;

// Incompatible feature bits (spec: "incompatible_features").
inline constexpr uint64_t kIncompatDirty = 1u << 0;
inline constexpr uint64_t kIncompatCorrupt = 1u << 1;
inline constexpr uint64_t kIncompatExternalData = 1u << 2;
inline constexpr uint64_t kIncompatCompression = 1u << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1u << 4;
inline constexpr uint64_t kIncompatKnown = 0x1F;
// Compatible feature bits.
inline constexpr uint64_t kCompatLazyRefcounts = 1u << 0;
// Autoclear feature bits.
inline constexpr uint64_t kAutoclearDataFileRaw = 1u << 1;

// Encryption methods.
inline constexpr uint32_t kCryptNone = 0;
inline constexpr uint32_t kCryptAes = 1;
inline constexpr uint32_t kCryptLuks = 2;

// Compression types.
inline constexpr uint8_t kCompressionZlib = 0;
inline constexpr uint8_t kCompressionZstd = 1;

// Header extension types.
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xE2792ACA;
inline constexpr uint32_t kExtFeatureNames = 0x6803F857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtFullDiskEncryption = 0x0537BE77;
inline constexpr uint32_t kExtExternalDataFile = 0x44415441;

// In the order qemu checks them.
enum class HeaderError {
  kNotQcow2,                  // bad magic
  kUnsupportedVersion,        // detail: version
  kInvalidClusterSize,        // detail: cluster_bits
  kHeaderTooShort,            // v3 header_length < 104
  kHeaderTooLong,             // header_length beyond the first cluster
  kInvalidBackingFileOffset,  // the backing file name starts beyond the first cluster
  kCompressionTypeInvalid,    // detail: the type byte
  kCompressionBitMissing,     // zstd without the compression-type feature bit
  kCompressionBitSet,         // zlib with the compression-type feature bit
  kUnsupportedFeatures,       // detail: unknown incompatible bits
  kRefcountOrderTooLarge,     // detail: refcount_order
  kBadEncryptionMethod,       // detail: method
  kRefcountTableTooLarge,
  kNoRefcountTable,
  kRefcountTableOffsetInvalid,
  kSnapshotTableTooLarge,
  kSnapshotTableOffsetInvalid,
  kL1TableTooLarge,
  kImageTooBig,               // the L1 index of the end of the image overflows an int
  kL1TableTooSmall,
  kL1TableOffsetInvalid,
  kL1TableUnreadable,         // the L1 table lies beyond the largest readable offset
  kBadExtension,              // an extension's length runs past the header area
  kBackingFormatTooLong,      // detail: length
  kCryptoExtensionUnexpected, // an encryption extension without LUKS encryption
  kCryptoExtensionSize,       // detail: the encryption extension's length (not 16)
  kCryptoHeaderUnaligned,     // detail: the encryption header's offset
  kCryptoHeaderMissing,       // LUKS without the encryption extension
  kBackingFileTooLong,        // detail: length
  kImageTooLarge,             // the virtual size is beyond kMaxImageBytes
};

struct ByteRange {
  uint64_t offset = 0;  // from the start of the file
  uint64_t length = 0;
};

struct Header {
  uint32_t version = 0;
  uint32_t cluster_bits = 0;
  uint64_t cluster_size = 0;
  uint64_t size = 0;  // virtual size, bytes
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = kV2HeaderLength;
  uint8_t compression_type = 0;

  ByteRange backing_file;       // empty when there is none
  ByteRange backing_format;     // from the backing-format extension
  ByteRange external_data_file; // from the external-data-file extension
  ByteRange feature_names;      // the feature name table extension's data
  ByteRange bitmaps_extension;
  ByteRange crypto_header;      // where the encryption header lies (from its extension)
  bool has_crypto_extension = false;

  uint32_t refcount_bits() const { return 1u << refcount_order; }
  // The data-file-raw autoclear bit without an external data file: qemu refuses to open such
  // an image for I/O ("data-file-raw requires a data file"), though info describes it.
  bool data_file_raw_without_data_file() const {
    return (incompatible_features & kIncompatExternalData) == 0 &&
           (autoclear_features & kAutoclearDataFileRaw) != 0;
  }
};

// Which open-time checks apply. qemu opens an image for `qemu-img check` in check mode
// (BDRV_O_CHECK), which leaves an empty refcount table and the snapshot table pointer to the
// check itself.
enum class OpenMode { kNormal, kCheck };

// Parses `bytes`, the first cluster of the file (zero-filled past its end; at least 4 KiB or
// the whole cluster, whichever is smaller, so the first call can learn the cluster size).
// Checks that need the cluster size are repeated when the caller passes the whole cluster.
base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes,
                                              OpenMode mode = OpenMode::kNormal);

// Where the feature name table lies in `bytes`, for naming unknown features after
// ParseHeader refused them; empty when there is none or the extension area is malformed.
ByteRange FindFeatureNameTable(base::ByteView bytes);

}  // namespace instar::qcow2
