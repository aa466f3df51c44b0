// INSTAR_GUEST_IMAGE(kind, entry): emits the abi::GuestImageHeader the linker script places at
// the start of a guest binary. Use once per binary. Guest-only; no allocation.
#pragma once

#include <stdint.h>

#include "abi/guest_image.h"

extern "C" char __instar_file_end[];
extern "C" char __instar_load_end[];

#define INSTAR_GUEST_IMAGE(image_kind, image_base, entry_function)                     \
  extern "C" __attribute__((section(".instar_image_header"), used))                   \
  const ::instar::abi::GuestImageHeader instar_image_header = {                       \
      ::instar::abi::kGuestImageMagic,                                                \
      ::instar::abi::kAbiVersion,                                                     \
      static_cast<uint32_t>(image_kind),                                              \
      0,                                                                              \
      image_base,                                                                     \
      reinterpret_cast<uint64_t>(&entry_function),                                    \
      reinterpret_cast<uint64_t>(__instar_file_end),                                  \
      reinterpret_cast<uint64_t>(__instar_load_end),                                  \
  }
