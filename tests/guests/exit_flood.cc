// Hostile guest: floods the host with cheap requests forever. The exit budget must stop it.
#include "abi/call_table.h"
#include "crates/freestanding/guest_image.h"

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* table) {
  for (;;) table->get_input_device_count();
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
