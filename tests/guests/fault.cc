// Hostile guest: raises the CPU exception the host asks for in InfoConfig::flags (reusing the
// info config page): 0 divide error, 6 invalid opcode, 13 general protection (hlt at CPL3),
// 14 page fault (write to the supervisor-only page tables), 140 stack overflow into the guard
// page.
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "abi/memory_map.h"
#include "crates/freestanding/guest_image.h"

namespace {

// Each level takes a page of stack; `limit` is never reached before the guard page.
__attribute__((noinline)) uint64_t Recurse(uint64_t depth, uint64_t limit) {
  volatile uint8_t frame[4096];
  frame[0] = static_cast<uint8_t>(depth);
  if (depth >= limit) return frame[0];
  return Recurse(depth + 1, limit) + frame[0];
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* table) {
  const auto* config =
      static_cast<const instar::abi::InfoConfig*>(table->get_operation_config(nullptr));
  switch (config->flags) {
    case 0: {
      // Inline asm: the compiler may rewrite a C division by a known divisor.
      uint64_t dividend_low = 1, dividend_high = 0, divisor = 0;
      asm volatile("divq %2" : "+a"(dividend_low), "+d"(dividend_high) : "r"(divisor));
      return static_cast<int>(dividend_low);
    }
    case 6: asm volatile("ud2"); break;
    case 13: asm volatile("hlt"); break;
    case 14:
      *reinterpret_cast<volatile uint64_t*>(instar::abi::kPml4.base) = 0;
      break;
    case 140: return static_cast<int>(Recurse(0, ~0ull));
    default: break;
  }
  table->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
