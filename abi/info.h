// InfoConfig (host -> guest at OPERATION_CONFIG_ADDR) and InfoResult (guest -> host through
// send_info_result) for the info operation; a refusal is send_error(InfoError, detail) instead
// of a result. Fixed-width fields, append-only error set, reserved tails. Header-only,
// freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kInfoConfigMagic = 0x4346494E;  // "NIFC"
inline constexpr uint32_t kInfoResultMagic = 0x5246494E;  // "NIFR"

struct InfoConfig {
  uint32_t magic;
  uint32_t requested_format;  // ImageFormat; kAuto probes
  uint32_t flags;             // kInfoConfig* bits
  uint32_t reserved[13];
};
static_assert(sizeof(InfoConfig) == 64);

// InfoConfig::flags bits.
// Input devices 1..n are the extents a previous run of a vmdk descriptor named, in the
// descriptor's order, with DeviceRole::kExtent (the host opened them; the guest reads the
// sparse headers among them).
inline constexpr uint32_t kInfoConfigExtentsAttached = 1u << 0;
// Open a qcow2 header as qemu's check opens it (qcow2::OpenMode::kCheck), so a refusal names
// what check would stop at; the host asks for it to word check's open errors.
inline constexpr uint32_t kInfoConfigOpenAsCheck = 1u << 1;
static_assert(offsetof(InfoConfig, requested_format) == 4);
static_assert(offsetof(InfoConfig, flags) == 8);
static_assert(sizeof(InfoConfig) <= kOperationConfig.size);

// Append-only. The host maps each to a message (exhaustively, no catch-all).
enum class InfoError : uint32_t {
  kOk = 0,
  kIoError = 1,                  // a read of the image failed
  kNotQcow2 = 2,                 // -f qcow2 on something else
  kUnsupportedQcow2Version = 3,  // detail: version
  kTruncatedHeader = 4,          // the file ends inside its header
  kInvalidClusterSize = 5,       // detail: cluster_bits
  kUnsupportedFeatures = 6,      // detail: unknown incompatible feature bits
  kHeaderTooShort = 7,           // v3 header_length < 104
  kHeaderTooLong = 8,            // header_length beyond the first cluster
  kRefcountOrderTooLarge = 9,    // detail: refcount_order
  kBadEncryptionMethod = 10,     // detail: method
  kBackingFileTooLong = 11,      // detail: length
  kBadHeaderExtension = 12,      // an extension runs past the header area
  kNotVmdk = 13,                 // -f vmdk on something else
  kVmdkUnsupportedVersion = 14,  // detail: version
  kVmdkBadGrainSize = 15,        // detail: grain size in sectors (over qemu's limit)
  kVmdkBadGrainTableSize = 16,   // detail: entries per grain table (over qemu's limit)
  kVmdkDescriptorTooLarge = 17,  // retired: descriptors are read up to qemu's own limit
  kVmdkBadDescriptor = 18,       // an invalid extent line; the kErrorText record holds it
  kUnsupportedFormat = 19,       // detail: probe::Format of a format instar does not handle
  kBadConfig = 20,               // the host's InfoConfig was not understood
  kInvalidBackingFileOffset = 21,  // the backing file name starts beyond the first cluster
  kL1TableTooLarge = 22,
  kImageTooBig = 23,               // the L1 index of the image's end overflows an int
  kL1TableTooSmall = 24,
  kL1TableOffsetInvalid = 25,
  kL1TableUnreadable = 26,         // the L1 table lies beyond the largest readable offset
  kRefcountTableTooLarge = 27,
  kNoRefcountTable = 28,
  kRefcountTableOffsetInvalid = 29,
  kSnapshotTableTooLarge = 30,
  kSnapshotTableOffsetInvalid = 31,
  kSnapshotExtraTooLarge = 32,     // detail: entry index
  kBitmapExtensionLength = 33,     // the bitmaps extension is not 24 bytes
  kBitmapDirectoryBroken = 34,     // an entry runs past the bitmap directory
  kCryptoHeaderMissing = 35,       // LUKS without its header extension
  kCompressionTypeInvalid = 36,    // detail: the type byte
  kCompressionBitMissing = 37,     // zstd without the compression-type feature bit
  kCompressionBitSet = 38,         // zlib with the compression-type feature bit
  kImageTooLarge = 39,             // the virtual size is beyond the block layer's limit
  kVmdkExtentHeaderInvalid = 40,   // a SPARSE extent without the sparse magic; detail: extent index
  kRecordsTooLarge = 41,           // the records (or one table entry) exceed instar's caps
  kBackingFormatTooLong = 42,      // detail: length
  kVmdkBadL1EntrySize = 43,        // a grain directory entry covers no sectors
  kVmdkL1TooBig = 44,              // the grain directory is too large
  kVmdkFileTruncated = 45,         // detail: qemu's (wrapping, signed) byte count
  kVmdkUnsupportedCreateType = 46, // the kVmdkCreateType record names it
  kVmdkInvalidArgument = 47,       // qemu fails with a bare EINVAL (a descriptor file without extents)
  kCryptoExtensionSize = 48,       // detail: the extension's length
  kCryptoHeaderUnaligned = 49,     // detail: offset; kErrorValue record: cluster size
  kCryptoOutsideExtension = 50,    // the LUKS header runs past what the extension covers
  kLuksNotLuks = 51,
  kLuksVersion = 52,               // detail: version
  kLuksPayloadOverlapsHeader = 53,
  kLuksSlotState = 54,             // detail: slot
  kLuksSlotStripes = 55,           // detail: slot (the kLuks record has its stripes)
  kLuksSlotOverlapsHeader = 56,    // detail: slot
  kLuksSlotsOverlap = 57,          // detail: first slot; kErrorValue record: second slot
  kLuksModeFormat = 58,            // the kLuks record has the names for these six
  kLuksMode = 59,
  kLuksIvgen = 60,
  kLuksIvgenHash = 61,
  kLuksCipher = 62,
  kLuksHash = 63,
  kBitmapExtensionReserved = 64,
  kBitmapExtensionEmpty = 65,
  kBitmapExtensionTooMany = 66,    // detail: count
  kBitmapDirectoryTooLarge = 67,   // detail: bytes
  kBitmapDirectoryOffset = 68,
  kBitmapsMissing = 69,            // the directory holds fewer bitmaps than the extension says
  kBitmapConstraints = 70,         // the last kBitmap record names the bitmap
  kBitmapsExtra = 71,              // the directory holds more bitmaps than the extension says
  kCryptoHeaderUnreadable = 72,    // the LUKS header lies beyond the largest readable offset
  kBitmapDirectoryUnreadable = 73, // the bitmap directory lies beyond the largest readable offset
  kVmdkL1Unreadable = 74,          // the grain directory lies beyond the largest readable offset
  kVmdkL1BackupUnreadable = 75,    // so does the redundant grain directory
  kVmdkFileTooSmall = 76,          // an empty file opened as vmdk
  kCryptoExtensionUnexpected = 77, // an encryption header extension without LUKS encryption
  kVmdkFooterUnreadable = 78,      // the header defers to a footer the file cannot hold
  kVmdkInvalidFooter = 79,         // the footer's markers or magic are wrong
};
inline constexpr uint32_t kInfoErrorCount = 80;

// InfoResult::flags bits.
inline constexpr uint32_t kInfoDirty = 1u << 0;
inline constexpr uint32_t kInfoCorrupt = 1u << 1;
inline constexpr uint32_t kInfoLazyRefcounts = 1u << 2;
inline constexpr uint32_t kInfoExtendedL2 = 1u << 3;
inline constexpr uint32_t kInfoEncrypted = 1u << 4;
inline constexpr uint32_t kInfoHasBackingFile = 1u << 5;
inline constexpr uint32_t kInfoHasBackingFormat = 1u << 6;
inline constexpr uint32_t kInfoDataFileRaw = 1u << 7;   // qcow2 autoclear bit 1
inline constexpr uint32_t kInfoVmdkDescriptorFile = 1u << 8;  // the image is a text descriptor
// qemu cannot read the descriptor's CIDs or parent hint: it fails with EINVAL once the
// extents are open.
inline constexpr uint32_t kInfoVmdkUnreadableKeys = 1u << 9;
// qcow2 bitmaps extension without the autoclear bit: qemu warns and ignores the bitmaps.
inline constexpr uint32_t kInfoStaleBitmaps = 1u << 10;

inline constexpr uint32_t kMaxBackingFileBytes = 1023;  // qemu's limit on the header string
inline constexpr uint32_t kMaxFormatNameBytes = 31;

struct InfoResult {
  uint32_t magic;
  uint32_t format;            // ImageFormat (never kAuto)
  uint32_t flags;             // kInfo* bits
  uint32_t reserved1;
  uint64_t virtual_size;      // bytes
  uint32_t cluster_size;      // bytes; 0 when the format has none
  uint32_t format_version;    // qcow2: 2 or 3; vmdk: header version
  uint32_t refcount_bits;     // qcow2
  uint32_t compression_type;  // qcow2: 0 zlib, 1 zstd
  uint32_t encryption_method; // qcow2: 0 none, 1 aes, 2 luks
  uint32_t vmdk_cid;
  uint32_t vmdk_parent_cid;
  uint32_t backing_file_len;
  uint32_t backing_format_len;
  uint32_t reserved0;
  uint64_t incompatible_features;
  uint64_t compatible_features;
  uint64_t autoclear_features;
  char backing_file[kMaxBackingFileBytes + 1];
  char backing_format[kMaxFormatNameBytes + 1];
  // Counts of the records sent with send_records, for the host's cross-check.
  uint32_t snapshot_count;
  uint32_t bitmap_count;
  uint32_t extent_count;
  uint32_t feature_name_count;
  uint8_t reserved[944];
};
static_assert(offsetof(InfoResult, format) == 4);
static_assert(offsetof(InfoResult, flags) == 8);
static_assert(offsetof(InfoResult, virtual_size) == 16);
static_assert(offsetof(InfoResult, cluster_size) == 24);
static_assert(offsetof(InfoResult, backing_file_len) == 52);
static_assert(offsetof(InfoResult, incompatible_features) == 64);
static_assert(offsetof(InfoResult, backing_file) == 88);
static_assert(offsetof(InfoResult, backing_format) == 1112);
static_assert(offsetof(InfoResult, snapshot_count) == 1144);
static_assert(offsetof(InfoResult, feature_name_count) == 1156);
static_assert(sizeof(InfoResult) == 2104);

}  // namespace instar::abi
