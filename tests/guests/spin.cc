// Hostile guest: spins forever without a single exit. The watchdog must stop it.
#include "abi/call_table.h"
#include "crates/freestanding/guest_image.h"

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable*) {
  for (;;) asm volatile("" ::: "memory");
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
