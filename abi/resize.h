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

struct ResizeConfig {
  uint32_t magic;
  uint32_t requested_format;  // ImageFormat; kAuto probes
  uint32_t flags;             // kResize* bits
  uint32_t preallocation;     // Preallocation
  uint64_t new_size;          // bytes, absolute (the host resolves +/-)
  uint32_t reserved[10];
};
static_assert(sizeof(ResizeConfig) == 64);
static_assert(offsetof(ResizeConfig, new_size) == 16);
static_assert(sizeof(ResizeConfig) <= kOperationConfig.size);

// Append-only. The host maps each to a message (exhaustively, no catch-all).
enum class ResizeError : uint32_t {
  kOk = 0,
  kIoError = 1,
  kBadConfig = 2,
};
inline constexpr uint32_t kResizeErrorCount = 3;

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
