// Image formats as they cross the guest/host boundary (configs, results, chain config).
// Append-only. Header-only, freestanding-safe.
#pragma once

#include <stdint.h>

namespace instar::abi {

enum class ImageFormat : uint32_t {
  kAuto = 0,  // probe (only valid in a request)
  kRaw = 1,
  kQcow2 = 2,
  kVmdk = 3,
};

}  // namespace instar::abi
