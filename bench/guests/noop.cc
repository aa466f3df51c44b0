// Benchmark guest: completes at once (an empty error report), so a run measures only VM
// construction, the runtime's preamble, two exits and teardown.
#include "abi/call_table.h"
#include "crates/freestanding/guest_image.h"

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* table) {
  table->send_error(0, 0);
  table->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
