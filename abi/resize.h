// ResizeConfig (host -> guest) and ResizeResult (guest -> host through send_resize_result) for
// the resize operation. Fixed-width fields, append-only error set, reserved tails.
// Header-only, freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kResizeConfigMagic = 0x43535252;  // "RRSC"
inline constexpr uint32_t kResizeResultMagic = 0x52535252;  // "RRSR"

enum class Preallocation : uint32_t {
  kOff = 0,
  kMetadata = 1,
  kFalloc = 2,
  kFull = 3,
};

// ResizeConfig::flags bits.
inline constexpr uint32_t kResizeAllowShrink = 1u << 0;  // --shrink

// ResizeConfig::size_mode: how new_size is applied to the current virtual size (qemu-img's
// "+SIZE" and "-SIZE"); the guest resolves it because only it knows the virtual size.
inline constexpr uint32_t kResizeExtentStemBytes = 256;
inline constexpr uint32_t kResizeExtentSuffixBytes = 32;

// ResizeConfig::extent_flags bits.
inline constexpr uint32_t kResizeExtentsAttached = 1u << 0;

enum class ResizeSizeMode : uint32_t {
  kAbsolute = 0,
  kGrowBy = 1,
  kShrinkBy = 2,
};

struct ResizeConfig {
  uint32_t magic;
  uint32_t requested_format;  // ImageFormat; kAuto probes
  uint32_t flags;             // kResize* bits
  uint32_t preallocation;     // Preallocation
  uint64_t new_size;          // bytes: absolute, or the delta for kGrowBy / kShrinkBy
  uint32_t size_mode;         // ResizeSizeMode
  // The host looked at the image's backing file (kResizeBackingChecked) and found this virtual
  // size; without it the guest refuses images that have one (kBackingFileUnchecked).
  uint32_t backing_flags;
  uint64_t backing_size;
  // twoGbMaxExtentSparse growth (kResizeExtentsAttached): input devices [0, k) are the
  // descriptor's k extents in order (the last one writable), [k, k + new_extent_count) empty
  // files the host created for the new extents, named by vmdk::ExtentFileName(extent_stem,
  // first_extent_number + i, extent_suffix).
  uint32_t extent_flags;
  uint32_t new_extent_count;
  uint32_t first_extent_number;
  uint32_t reserved[3];
  char extent_stem[kResizeExtentStemBytes];      // NUL terminated
  char extent_suffix[kResizeExtentSuffixBytes];  // NUL terminated
};
static_assert(sizeof(ResizeConfig) == 64 + kResizeExtentStemBytes + kResizeExtentSuffixBytes);
static_assert(offsetof(ResizeConfig, extent_flags) == 40);
static_assert(offsetof(ResizeConfig, extent_stem) == 64);
static_assert(offsetof(ResizeConfig, new_size) == 16);
static_assert(offsetof(ResizeConfig, size_mode) == 24);
static_assert(offsetof(ResizeConfig, backing_flags) == 28);
static_assert(offsetof(ResizeConfig, backing_size) == 32);

// ResizeConfig::backing_flags bits.
inline constexpr uint32_t kResizeBackingChecked = 1u << 0;
static_assert(sizeof(ResizeConfig) <= kOperationConfig.size);

// Append-only. The host maps each to a message (exhaustively, no catch-all).
enum class ResizeError : uint32_t {
  kOk = 0,
  kIoError = 1,
  kBadConfig = 2,
  kUnsupportedFormat = 3,        // detail: probe::Format
  // 4-14 are retired: a qcow2 header qemu refuses is kQcow2HeaderRefused. Never reuse them.
  // qemu-img's own refusals, in the order it checks them.
  kSizeNotPositive = 15,         // the resolved size is <= 0 as a signed 64-bit number
  kPreallocationNeedsGrowth = 16,
  kShrinkNotAllowed = 17,        // shrinking without --shrink
  kSizeAboveMaximum = 18,        // detail: the requested size
  kSizeNotSectorMultiple = 19,
  kV2WithSnapshots = 20,
  kL1TooLarge = 21,              // the new size needs an L1 table above qemu's cap
  kImageCorruptFlag = 22,        // the corrupt bit is set: qemu refuses to open read/write
  kFormatCannotResize = 23,      // qemu-img resizes no vmdk; instar grows monolithicSparse only
  kPreallocationUnsupported = 24,  // detail: Preallocation the format does not do
  kFileTooLarge = 25,            // the device could not be resized to the new size
  // Images instar refuses where qemu-img would do more than resize.
  kDirtyImage = 26,              // lazy refcounts left dirty: qemu repairs them first
  kExternalDataFile = 27,
  kEncrypted = 28,
  kHasBackingFile = 29,          // the host must look at the backing file first (and retry)
  // The image's metadata is inconsistent; nothing was written. detail: the offending offset.
  kCorruptL1 = 30,
  kCorruptL2 = 31,
  kCorruptRefcountTable = 32,
  kCorruptRefcount = 33,         // a referenced cluster has refcount 0, or a count would wrap
  kScratchTooSmall = 34,         // metadata for this request does not fit the guest's arena
  kVmdkBadHeader = 35,           // detail: SparseHeaderError
  kVmdkBadDescriptor = 36,       // detail: line
  kVmdkCorrupt = 37,             // grain directory or tables out of the file; detail: offset
  kBackingFileLarger = 38,       // zeroes over a longer backing file that instar cannot write
  // The qcow2 header failed one of qemu's open-time checks (detail: qcow2::HeaderError); the
  // host asks the info operation for qemu's exact message (one place knows them all).
  kQcow2HeaderRefused = 39,
  kZeroNotSupported = 40,        // zeroes over a longer backing file on a v2 image
  // twoGbMaxExtentSparse growth: the host must attach the extents and create `detail` new
  // extent files (and ask again).
  kNeedsExtents = 41,
  kTooManyExtents = 42,          // the growth needs more extents than instar handles
  kExtentMismatch = 43,          // an extent's header disagrees with the descriptor; detail: index
};
inline constexpr uint32_t kResizeErrorCount = 44;
inline constexpr bool ResizeErrorRetired(uint32_t code) { return code >= 4 && code <= 14; }

struct ResizeResult {
  uint32_t magic;
  uint32_t format;      // ImageFormat
  uint32_t flags;       // none defined yet
  uint32_t reserved0;
  uint64_t old_size;    // virtual size before, bytes
  uint64_t new_size;    // virtual size after, bytes
  uint64_t writes;      // metadata and data writes performed
  uint8_t reserved[216];
};
static_assert(offsetof(ResizeResult, old_size) == 16);
static_assert(offsetof(ResizeResult, writes) == 32);
static_assert(sizeof(ResizeResult) == 256);

}  // namespace instar::abi
