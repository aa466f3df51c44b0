// Format probing from the first bytes of an image, with qemu's outcomes: a recognised magic
// wins, anything else is raw. Formats instar does not handle are recognised too, so they are
// refused by name instead of being misreported as raw. Pure, freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"

namespace instar::probe {

// Append-only: crosses the ABI as an error detail.
enum class Format : uint32_t {
  kRaw = 0,
  kQcow2 = 1,
  kVmdk = 2,
  kQcow1 = 3,
  kVdi = 4,
  kVpc = 5,
  kVhdx = 6,
  kQed = 7,
  kLuks = 8,
  kParallels = 9,
  kCloop = 10,
  kBochs = 11,
};
inline constexpr uint32_t kFormatCount = 12;

// How many leading bytes ProbeFormat looks at (at most).
inline constexpr uint64_t kProbeBytes = 2048;

Format ProbeFormat(base::ByteView head);

// qemu's name for the format ("qcow2", "vpc", ...).
const char* FormatName(Format format);

}  // namespace instar::probe
