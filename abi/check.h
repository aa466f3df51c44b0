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
  uint32_t flags;             // none defined yet
  uint32_t reserved[12];
};
static_assert(sizeof(CheckConfig) == 64);
static_assert(offsetof(CheckConfig, repair) == 8);
static_assert(sizeof(CheckConfig) <= kOperationConfig.size);

// Append-only. The host maps each to a message (exhaustively, no catch-all).
enum class CheckError : uint32_t {
  kOk = 0,
  kIoError = 1,
  kBadConfig = 2,
};
inline constexpr uint32_t kCheckErrorCount = 3;

struct CheckResult {
  uint32_t magic;
  uint32_t format;             // ImageFormat
  uint32_t flags;              // none defined yet
  uint32_t reserved0;
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
  uint8_t reserved[176];
};
static_assert(offsetof(CheckResult, check_errors) == 16);
static_assert(offsetof(CheckResult, image_end_offset) == 56);
static_assert(offsetof(CheckResult, compressed_clusters) == 88);
static_assert(sizeof(CheckResult) == 272);

}  // namespace instar::abi
