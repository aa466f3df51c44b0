// CheckConfig (host -> guest) and CheckResult (guest -> host through send_check_result) for
// the check operation. Findings stream as records (send_record) of the types the check
// operation defines here. Fixed-width fields, append-only error set, reserved tails.
// Header-only, freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kCheckConfigMagic = 0x43484343;  // "CCHC"
inline constexpr uint32_t kCheckResultMagic = 0x52484343;  // "CCHR"

enum class CheckRepair : uint32_t {
  kNone = 0,
  kLeaks = 1,  // -r leaks
  kAll = 2,    // -r all
};

struct CheckConfig {
  uint32_t magic;
  uint32_t requested_format;  // ImageFormat; kAuto probes
  uint32_t repair;            // CheckRepair
  uint32_t flags;             // kCheck* bits
  // Host clusters one pass of the in-guest reference count may cover; 0 = as many as the
  // scratch region holds. Lets tests force the multi-pass path on small images.
  uint64_t max_clusters_per_pass;
  uint32_t reserved[10];
};
static_assert(sizeof(CheckConfig) == 64);
static_assert(offsetof(CheckConfig, repair) == 8);
static_assert(offsetof(CheckConfig, max_clusters_per_pass) == 16);
static_assert(sizeof(CheckConfig) <= kOperationConfig.size);

// CheckConfig::flags bits.
// The host opened the image's backing chain (qemu does so before checking); without it the
// guest stops with kHasBackingFile, before any write, when the image has a backing file.
inline constexpr uint32_t kCheckBackingChecked = 1u << 0;

// Bytes a repair may grow the image by (the host's write limit on the device): a rebuilt
// refcount structure is a small fraction of the file, plus a few clusters of the largest
// size; the guest sizes its count so that anything inside the limit fits.
inline constexpr uint64_t RepairGrowthLimit(uint64_t file_size) {
  return file_size / 16 + (64ull << 20);
}

// Append-only. The host maps each to a message (exhaustively, no catch-all).
enum class CheckError : uint32_t {
  kOk = 0,
  kIoError = 1,
  kBadConfig = 2,
  // 3-13 are retired: a qcow2 header qemu refuses is kQcow2HeaderRefused. Never reuse them.
  // The image could not be opened (qemu-img: "Could not open 'FILE': ..."); detail as noted.
  kEncrypted = 14,                // encrypted images need a key instar never has
  kExternalDataFile = 15,
  kReftableTooLarge = 16,
  kReftableInvalid = 17,          // offset unaligned or past the end of the file
  kL1TooLarge = 18,
  kL1TooSmall = 19,
  kL1Invalid = 20,
  kImageTooBig = 21,              // the virtual size needs more than INT_MAX L1 entries
  kVirtualSizeTooLarge = 22,      // the virtual size is past the block layer's limit
  kUnsupportedFormat = 23,        // detail: probe::Format
  kVmdkBadHeader = 24,            // vmdk the check cannot open; detail: SparseHeaderError
  // The scratch region cannot hold even the buffers of one pass; detail: clusters.
  kScratchTooSmall = 25,
  kNotSupportedByFormat = 26,     // "This image format does not support checks"; detail: probe::Format
  kVmdkSeparateExtents = 27,      // a descriptor file: its extents are other files
  kL1ReadFailed = 28,             // the active L1 table lies past what qemu can read
  // The qcow2 header failed one of qemu's open-time checks (detail: qcow2::HeaderError); the
  // host asks the info operation for qemu's exact message (one place knows them all).
  kQcow2HeaderRefused = 29,
  kDataFileRawWithoutDataFile = 30,  // the data-file-raw autoclear bit, no external data file
  kHasBackingFile = 31,           // the host must open the backing chain first (see flags)
  kVmdkVersion3ReadOnly = 32,     // a repair opens the image for writing
};
inline constexpr uint32_t kCheckErrorCount = 33;
inline constexpr bool CheckErrorRetired(uint32_t code) { return code >= 3 && code <= 13; }

// What a check run ended with besides the counts: qemu's check returned an errno.
enum class CheckFailure : uint32_t {
  kNone = 0,
  kIoError = 1,         // EIO: "Check failed: Input/output error"
  kInvalidArgument = 2, // EINVAL: "Check failed: Invalid argument"
  kNoSpace = 3,         // ENOSPC
  kFileTooLarge = 4,    // EFBIG
  kNotPermitted = 5,    // EPERM: vmdk's VMDK_ERROR (-1) returned as an errno
};
inline constexpr uint32_t kCheckFailureCount = 6;

// One line qemu-img's check prints on stderr, as a kind and up to three numbers; the host
// formats the text. Append-only.
enum class FindingKind : uint32_t {
  kLeakedCluster = 1,          // a cluster, b refcount, c reference
  kClusterRefcountError = 2,   // a cluster, b refcount, c reference
  kRepairingCluster = 3,       // a cluster, b refcount, c reference
  kRegionPastEof = 4,          // a offset, b size
  kRefcountOverflow = 5,       // a cluster offset
  kL1ReservedBits = 6,         // a entry
  kL2TableUnaligned = 7,       // a l2 offset
  kL2ReservedBits = 8,         // a entry
  kCompressedCopied = 9,       // a coffset
  kCompressedWithBitmap = 10,  // a index, b entry
  kSubclusterBitmapCorrupt = 11,  // a offset
  kPreallocUnaligned = 12,     // a offset, b 1 when repairing
  kDataUnaligned = 13,         // a offset
  kUnallocatedWithBitmap = 14,
  kReftableReservedBits = 15,  // a reftable index
  kRefblockUnaligned = 16,     // a reftable index
  kRefblockOutsideImage = 17,  // a reftable index, b 1 when repairing
  kRefblockRefcount = 18,      // a reftable index, b refcount
  kCantGetRefcount = 19,       // a cluster
  kRefblockOffsetCorruptEvent = 20,  // a refblock offset, b reftable index, c 1 when writable
  kCopiedL2Table = 21,         // a l1 index, b l1 entry, c refcount; flags bit 0: repairing
  kCopiedDataCluster = 22,     // a l2 entry, b refcount; flags bit 0: repairing
  kRebuilding = 23,
  kNeedRebuild = 24,
  kRebuiltStillBroken = 25,
  kVmdkNoClusterOffset = 26,   // a sector
  kVmdkPastEof = 27,           // a sector
  kResizeFailed = 28,          // growing the file for a refcount block outside it failed;
                               // a 0: too large for the host's bound, 1: offset invalid
  kOverlapCorruptEvent = 29,   // a MetadataKind the write would overwrite, c 1 when writable
  kRebuildWriteFailed = 30,    // a 0: a refcount block, 1: the refcount table
  kSnapshotTableTooLarge = 31,       // a snapshots past qemu's maximum
  kSnapshotTableOffsetInvalid = 32,
  kL1ReadError = 33,           // an L1 table could not be read: the check stops
  kL2ReadError = 34,           // an L2 table could not be read: the check stops
  kRebuildTooLarge = 35,       // no room for a rebuild's new refcount table; a clusters
  kBitmapsInconsistent = 36,   // bitmaps extension without its autoclear bit (open warning)
  // The snapshot table stage (qemu's qcow2_check_read_snapshot_table and
  // qcow2_check_fix_snapshot_table); flags bit 0 where noted: repairing.
  kSnapshotsOverhanging = 37,  // a entries past qemu's maximum discarded
  kSnapshotExtraTooLarge = 38, // a entry index, b extra data size; flags
  kSnapshotTableTooBig = 39,   // a entries from the first that overflows; flags
  kSnapshotIncomplete = 40,    // a entry index; flags
  kSnapshotTableReadError = 41,
  kSnapshotTableUpdateFailed = 42,  // a SnapshotUpdateFailure
  // A repair's write would overwrite other metadata (after kOverlapCorruptEvent): the check
  // stops. The L2 entry of an unaligned preallocated cluster; a whole L2 table.
  kL2EntryOverlap = 43,
  kL2TableOverlap = 44,
};
inline constexpr uint32_t kFindingKindMax = 44;

// Why rewriting the snapshot table failed (kSnapshotTableUpdateFailed).
enum class SnapshotUpdateFailure : uint64_t {
  kTooLarge = 0,        // EFBIG: the rewritten table exceeds qemu's limit
  kIoError = 1,         // EIO
};
inline constexpr uint64_t kSnapshotUpdateFailureCount = 2;

// Metadata qemu refuses to overwrite (its overlap check), in the order it tests them.
enum class MetadataKind : uint32_t {
  kHeader = 0,
  kActiveL1 = 1,
  kActiveL2 = 2,
  kRefcountTable = 3,
  kRefcountBlock = 4,
  kSnapshotTable = 5,
  kInactiveL1 = 6,
  kInactiveL2 = 7,
  kBitmapDirectory = 8,
};
inline constexpr uint32_t kMetadataKindCount = 9;
inline constexpr uint32_t kFindingRepairing = 1u << 0;

struct CheckFinding {
  uint32_t kind;   // FindingKind
  uint32_t flags;  // kFindingRepairing
  uint64_t a, b, c;
  // Where qemu would print it: the host sorts the findings by this key, stably (a check that
  // counts in several windows reports later windows' walk findings after their place).
  uint64_t order;
};
static_assert(sizeof(CheckFinding) == 40);

// Findings travel in batches (one host exit per batch).
inline constexpr uint32_t kCheckFindingBatchMagic = 0x42464843;  // "CHFB"
inline constexpr uint32_t kFindingsPerBatch = 31;
inline constexpr uint32_t kMaxFindingBatches = 1u << 16;
struct CheckFindingBatch {
  uint32_t magic;
  uint32_t count;  // 1..kFindingsPerBatch
  CheckFinding findings[kFindingsPerBatch];
};
static_assert(sizeof(CheckFindingBatch) == 1248);

// A finding about a snapshot table entry, which names the snapshot. Sent in order with the
// batches (the operation flushes its batch first).
inline constexpr uint32_t kCheckSnapshotFindingMagic = 0x53464843;  // "CHFS"
inline constexpr uint32_t kMaxSnapshotFindings = 1024;
inline constexpr uint32_t kSnapshotTextBytes = 256;
enum class SnapshotFindingKind : uint32_t {
  kL1Unaligned = 1,  // value: l1 offset
  kL1TooLarge = 2,   // value: l1 size (entries)
};
struct CheckSnapshotFinding {
  uint32_t magic;
  uint32_t kind;      // SnapshotFindingKind
  uint64_t value;
  uint32_t id_len;    // bytes used in id (clipped)
  uint32_t name_len;  // bytes used in name (clipped)
  char id[kSnapshotTextBytes];
  char name[kSnapshotTextBytes];
  uint64_t order;  // as CheckFinding::order
};
static_assert(sizeof(CheckSnapshotFinding) == 32 + 2 * kSnapshotTextBytes);

struct CheckResult {
  uint32_t magic;
  uint32_t format;             // ImageFormat
  uint32_t flags;              // kCheckResult*
  uint32_t failure;            // CheckFailure: the check itself failed (no report printed)
  uint64_t check_errors;       // internal errors while checking
  uint64_t corruptions;
  uint64_t leaks;
  uint64_t corruptions_fixed;
  uint64_t leaks_fixed;
  uint64_t image_end_offset;
  uint64_t total_clusters;
  uint64_t allocated_clusters;
  uint64_t fragmented_clusters;
  uint64_t compressed_clusters;
  uint64_t passes;             // passes over the reference count space (diagnostics)
  uint8_t reserved[168];
};
// The findings did not all fit the record budget; the host says so after the last one.
inline constexpr uint32_t kCheckResultFindingsTruncated = 1u << 0;
inline constexpr uint32_t kCheckResultKnownFlags = kCheckResultFindingsTruncated;
static_assert(offsetof(CheckResult, check_errors) == 16);
static_assert(offsetof(CheckResult, image_end_offset) == 56);
static_assert(offsetof(CheckResult, compressed_clusters) == 88);
static_assert(offsetof(CheckResult, failure) == 12);
static_assert(offsetof(CheckResult, passes) == 96);
static_assert(sizeof(CheckResult) == 272);

}  // namespace instar::abi
