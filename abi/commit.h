// CommitConfig (host -> guest) and CommitResult (guest -> host through send_commit_result) for
// the commit operation. Fixed-width fields, append-only error set, reserved tails.
// Header-only, freestanding-safe.
//
// Devices: the base is the output device (read/write, bounded write limit, may grow). The
// inputs are the rest of the chain, nearest to the top first: inputs [0, layers_above_base) are
// the layers above the base (input 0 is the top, writable only when it is to be emptied), and
// inputs [layers_above_base, layers_above_base + layers_below_base) are the base's own backing
// chain (read-only; the guest reads them to fill whole base clusters). The guest view of the
// chain is therefore: inputs above, the output, inputs below. Each device's format (as the host
// found it: the top's as asked or probed, the others as their parent names them or as probed)
// and virtual size are in the ChainConfig.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kCommitConfigMagic = 0x43434D52;  // "RMCC"
inline constexpr uint32_t kCommitResultMagic = 0x52434D52;  // "RMCR"

// CommitConfig::flags bits.
inline constexpr uint32_t kCommitEmptyTop = 1u << 0;  // empty the top afterwards (no -d, no -b)
inline constexpr uint32_t kCommitProgress = 1u << 1;  // send_progress as data moves (-p)

struct CommitConfig {
  uint32_t magic;
  uint32_t flags;              // kCommit* bits
  uint32_t layers_above_base;  // >= 1: the top and the intermediates
  uint32_t layers_below_base;  // the base's backing chain
  uint32_t reserved[12];
};
static_assert(sizeof(CommitConfig) == 64);
static_assert(offsetof(CommitConfig, layers_below_base) == 12);
static_assert(sizeof(CommitConfig) <= kOperationConfig.size);

// Append-only. The host maps each to a message (exhaustively, no catch-all). Where a layer is
// at fault, CommitResult::failed_layer names it (guest-view index).
enum class CommitError : uint32_t {
  kOk = 0,
  kIoError = 1,                // a read or write the host refused or failed; detail: CallStatus
  kBadConfig = 2,
  kUnsupportedFormat = 3,      // detail: ImageFormat the layer has
  kHeaderRefused = 4,          // a layer's header fails a check the info guest passed
  kImageCorruptFlag = 5,       // a layer instar writes has qcow2's corrupt bit set
  kDirtyImage = 6,             // a layer instar writes has dirty lazy refcounts
  kExternalDataFile = 7,
  kEncrypted = 8,
  kCorruptMetadata = 9,        // L1/L2/grain tables or refcounts inconsistent; detail: offset
  kScratchTooSmall = 10,       // metadata for this request does not fit the guest's arena
  kBaseCannotGrow = 11,        // the base is smaller than the top and its format cannot grow
  kL1TooLarge = 12,            // growing the base needs an L1 table above qemu's cap
  kChainMismatch = 13,         // a layer's size or format disagrees with what the host found
  kUnsupportedLayout = 14,     // detail: CommitUnsupported
};
inline constexpr uint32_t kCommitErrorCount = 15;

// CommitError::kUnsupportedLayout details: what instar does not read or write (yet). Append-only.
enum class CommitUnsupported : uint32_t {
  kZstdCompression = 0,      // a qcow2 layer compressed with zstd
  kExtendedL2 = 1,           // a qcow2 image instar writes has extended L2 entries
  kVmdkMultiFile = 2,        // a vmdk described by a text descriptor (several files)
  kVmdkStreamOptimized = 3,  // a streamOptimized vmdk base
  kVmdkNotSparse = 4,        // a vmdk base that is not a hosted sparse extent
  kGrowUnaligned = 5,        // growing a base whose size is not cluster-aligned over a longer
                             // backing file
};
inline constexpr uint32_t kCommitUnsupportedCount = 6;

// CommitResult::failed_layer when the guest cannot tell which layer of a chain read failed.
inline constexpr uint32_t kCommitLayerUnknown = 0xFFFFFFFFu;

// CommitResult::flags bits.
inline constexpr uint32_t kCommitTopEmptied = 1u << 0;
inline constexpr uint32_t kCommitBaseGrown = 1u << 1;

struct CommitResult {
  uint32_t magic;
  uint32_t flags;         // kCommitTopEmptied, kCommitBaseGrown
  uint32_t failed_layer;  // guest-view index of the layer an error is about (or unknown)
  uint32_t reserved0;
  uint64_t base_old_size;       // virtual size before, bytes
  uint64_t base_new_size;       // virtual size after, bytes
  uint64_t bytes_committed;     // guest bytes written into the base (data and zeros)
  uint64_t writes;              // device writes performed (base and top)
  uint8_t reserved[208];
};
static_assert(offsetof(CommitResult, base_old_size) == 16);
static_assert(offsetof(CommitResult, writes) == 40);
static_assert(sizeof(CommitResult) == 256);

}  // namespace instar::abi
