// The check operation as a freestanding function: the guest entry (entry.cc) calls it with the
// runtime's call table and the scratch region; the fuzz target with a fake call table.
#pragma once

#include "abi/call_table.h"
#include "crates/base/arena.h"

namespace instar::ops {

// Runs one check request against `table` (its config and devices) and completes it; returns
// the completion status (0 or 1).
int RunCheck(const abi::CallTable* table, base::Arena& scratch);

}  // namespace instar::ops
