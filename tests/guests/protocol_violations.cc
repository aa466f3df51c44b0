// Hostile guest: breaks the protocol in the way InfoConfig::flags selects: 1 returns without
// completing, 2 completes without a result, 3 reads the doorbell, 4 writes next to the
// doorbell, 5 sends a result with the wrong size then completes.
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "abi/memory_map.h"
#include "crates/freestanding/guest_image.h"

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* table) {
  const auto* config =
      static_cast<const instar::abi::InfoConfig*>(table->get_operation_config(nullptr));
  switch (config->flags) {
    case 1: return 42;
    case 2: table->send_complete(0); break;
    case 3: {
      const uint64_t v = *reinterpret_cast<volatile uint64_t*>(instar::abi::kDoorbell.base);
      return static_cast<int>(v);
    }
    case 4: *reinterpret_cast<volatile uint32_t*>(instar::abi::kDoorbell.base + 64) = 1; break;
    case 5: {
      instar::abi::InfoResult result{};
      result.magic = 0xBADBAD;
      table->send_info_result(&result);
      table->send_complete(0);
      break;
    }
    default: break;
  }
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
