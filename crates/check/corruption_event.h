// qemu's corruption events (qcow2_signal_corruption) during a check: the first one is
// reported, later ones are suppressed; when the image is open for writing the event is fatal
// and marks the image corrupt (the incompatible "corrupt" bit, written at once). Freestanding;
// no allocation.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/check/internal/check_state.h"

namespace instar::check {

// Reports `kind` (its `a` and `b`; `c` is set to whether the event is fatal) unless an event
// was already reported.
void SignalCorruption(CheckState& s, abi::FindingKind kind, uint64_t a, uint64_t b);

}  // namespace instar::check
