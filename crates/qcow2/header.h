// The qcow2 header (QEMU's qcow2 specification, "Header" and "Header extensions") parsed into
// an immutable model. Pure and freestanding: input is the bytes of the first cluster (or as
// much of the file as exists), output a Qcow2Header or an error. No allocation.
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

// Incompatible feature bits (spec: "incompatible_features").
inline constexpr uint64_t kIncompatDirty = 1u << 0;
inline constexpr uint64_t kIncompatCorrupt = 1u << 1;
inline constexpr uint64_t kIncompatExternalData = 1u << 2;
inline constexpr uint64_t kIncompatCompression = 1u << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1u << 4;
inline constexpr uint64_t kIncompatKnown = 0x1F;
// Compatible feature bits.
inline constexpr uint64_t kCompatLazyRefcounts = 1u << 0;

// Header extension types.
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xE2792ACA;
inline constexpr uint32_t kExtFeatureNames = 0x6803F857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtFullDiskEncryption = 0x0537BE77;
inline constexpr uint32_t kExtExternalDataFile = 0x44415441;

enum class HeaderError {
  kNotQcow2,             // bad magic
  kTruncated,            // the header (or an extension) runs past the bytes available
  kUnsupportedVersion,   // detail: version
  kInvalidClusterSize,   // detail: cluster_bits
  kHeaderTooShort,       // v3 header_length < 104
  kHeaderTooLong,        // header_length beyond the first cluster
  kRefcountOrderTooLarge,  // detail: refcount_order
  kUnsupportedFeatures,  // detail: unknown incompatible bits
  kBadEncryptionMethod,  // detail: method
  kBackingFileTooLong,   // detail: length
  kBadExtension,         // an extension's length runs past the header area
};

struct ByteRange {
  uint64_t offset = 0;  // from the start of the file
  uint32_t length = 0;
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
  ByteRange crypto_extension;

  uint32_t refcount_bits() const { return 1u << refcount_order; }
};

// Parses `bytes` (the start of the file; the first cluster is always enough). Fields that
// qemu checks against the file later (table offsets, sizes) are left to the caller.
base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes);

}  // namespace instar::qcow2
