// INSTAR_OPERATION_ENTRY(run): the guest entry of an operation binary, a thin wrapper that
// hands the call table and the scratch region (abi/memory_map.h) to `run`, the operation's
// freestanding function (`int run(const abi::CallTable*, base::Arena&)`, which the fuzz
// targets drive on the host through a fake call table), plus the image header. Use once per
// operation binary. Guest-only.
#pragma once

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/guest_image.h"
#include "abi/memory_map.h"
#include "crates/base/arena.h"
#include "crates/freestanding/guest_image.h"

#define INSTAR_OPERATION_ENTRY(run)                                                       \
  extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(            \
      const ::instar::abi::CallTable* table) {                                            \
    ::instar::base::Arena scratch(reinterpret_cast<uint8_t*>(::instar::abi::kScratchMemBase), \
                                  ::instar::abi::kScratchMemSize);                        \
    return run(table, scratch);                                                           \
  }                                                                                       \
  INSTAR_GUEST_IMAGE(::instar::abi::GuestImageKind::kOperation,                           \
                     ::instar::abi::kOperationLoadAddr, instar_entry)
