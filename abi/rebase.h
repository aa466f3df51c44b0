// RebaseConfig (host -> guest) and RebaseResult (guest -> host through send_rebase_result) for
// the rebase operation. The overlay is the output device; the old and new backing chains are
// read-only input devices at contiguous slots, top to bottom. Fixed-width fields, append-only
// error set, reserved tails. Header-only, freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kRebaseConfigMagic = 0x43424252;  // "RBBC"
inline constexpr uint32_t kRebaseResultMagic = 0x52424252;  // "RBBR"

// The longest backing file name qemu stores (qcow2: 1023 bytes) plus its terminator, and the
// longest format name (qemu's driver names are short; the qcow2 extension allows 31 bytes).
inline constexpr uint32_t kRebaseNameBytes = 1024;
inline constexpr uint32_t kRebaseFormatNameBytes = 32;

// RebaseConfig::flags bits.
inline constexpr uint32_t kRebaseUnsafe = 1u << 0;       // -u: rewrite the header only
inline constexpr uint32_t kRebaseHasBacking = 1u << 1;   // a non-empty -b: a new backing name
inline constexpr uint32_t kRebaseHasFormat = 1u << 2;    // -F: a backing format name
inline constexpr uint32_t kRebaseProgress = 1u << 3;     // -p: send_progress while copying
// The host attached a new chain, or (bit clear) the new backing reads as zeros (-b "").
inline constexpr uint32_t kRebaseNewChainAttached = 1u << 4;

struct RebaseConfig {
  uint32_t magic;
  uint32_t requested_format;  // ImageFormat of the overlay; kAuto probes
  uint32_t flags;             // kRebase* bits
  uint32_t new_format;        // ImageFormat of the new backing's top (kAuto: not attached)
  // Input slots, top (the overlay's parent) first.
  uint32_t old_chain_first;
  uint32_t old_chain_count;
  uint32_t new_chain_first;
  uint32_t new_chain_count;
  uint32_t new_backing_name_length;  // bytes in new_backing_name, no terminator counted
  uint32_t new_format_name_length;   // bytes in new_format_name
  uint32_t reserved0[2];
  // What the overlay will store, exactly as qemu stores it: the -b string and the -F string.
  char new_backing_name[kRebaseNameBytes];
  char new_format_name[kRebaseFormatNameBytes];
  uint32_t reserved[8];
};
static_assert(offsetof(RebaseConfig, old_chain_first) == 16);
static_assert(offsetof(RebaseConfig, new_backing_name_length) == 32);
static_assert(offsetof(RebaseConfig, new_backing_name) == 48);
static_assert(offsetof(RebaseConfig, new_format_name) == 48 + kRebaseNameBytes);
static_assert(sizeof(RebaseConfig) == 48 + kRebaseNameBytes + kRebaseFormatNameBytes + 32);
static_assert(sizeof(RebaseConfig) <= kOperationConfig.size);

// Append-only. 0..13 are the original plan's codes; the host maps each to a message
// (exhaustively, no catch-all).
enum class RebaseError : uint32_t {
  kOk = 0,
  kIoError = 1,
  kBadConfig = 2,
  kUnsupportedFormat = 3,        // detail: probe::Format
  kChainUnreadable = 4,          // a backing chain member could not be read; detail: slot
  kHeaderNoSpace = 5,            // qemu's ENOSPC: the name does not fit the header cluster
  kChangeNotSupported = 6,       // the format stores no backing file (raw): qemu's ENOTSUP
  kOverlayCorrupt = 7,           // detail: the offending offset
  kBackingPathTooLong = 8,       // above qemu's 1023 bytes: qemu's EINVAL
  kScratchTooSmall = 9,
  kRefcountExhausted = 10,       // a refcount would overflow its width
  kDescriptorTooLarge = 11,      // the rewritten vmdk descriptor does not fit its room
  kParseFailed = 12,             // detail: the parser's error code
  kInternalOverflow = 13,        // an offset or size computation overflowed
  // Beyond the plan.
  kImageCorruptFlag = 14,        // qemu refuses to open a corrupt-flagged qcow2 read/write
  kDirtyImage = 15,              // lazy refcounts left dirty: qemu repairs them first
  kEncrypted = 16,
  kRawExternalData = 17,         // a backing file over a raw external data file: EINVAL
  kQcow2HeaderRefused = 18,      // detail: qcow2::HeaderError (qemu's open-time checks)
  kVmdkBadHeader = 19,           // detail: SparseHeaderError
  kVmdkBadDescriptor = 20,       // detail: line
  kVmdkUnsupported = 21,         // a vmdk instar does not rebase (not monolithicSparse)
  kWriteFailed = 22,             // the host refused a write; detail 0: the header, 1: data
  kExternalDataFile = 23,        // safe rebase of a qcow2 with an external data file
  kExtendedL2 = 24,              // safe rebase of a qcow2 with extended L2 entries
};
inline constexpr uint32_t kRebaseErrorCount = 25;

struct RebaseResult {
  uint32_t magic;
  uint32_t format;      // ImageFormat of the overlay
  uint32_t flags;       // none defined yet
  uint32_t reserved0;
  uint64_t clusters_compared;  // guest clusters the overlay did not own
  uint64_t clusters_copied;    // of those, the ones whose old content went into the overlay
  uint64_t bytes_copied;
  uint64_t writes;             // metadata and data writes performed
  uint8_t reserved[208];
};
static_assert(offsetof(RebaseResult, clusters_compared) == 16);
static_assert(offsetof(RebaseResult, writes) == 40);
static_assert(sizeof(RebaseResult) == 256);

}  // namespace instar::abi
