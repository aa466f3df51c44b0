// The header at the start of every guest binary (runtime and operations). The linker script
// places it first; the host checks it before loading (magic, ABI version, load extent
// including .bss, entry point inside the image). Header-only, freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace instar::abi {

inline constexpr uint32_t kGuestImageMagic = 0x47525349;  // "ISRG"
inline constexpr uint32_t kAbiVersion = 1;

enum class GuestImageKind : uint32_t {
  kRuntime = 1,
  kOperation = 2,
};

struct GuestImageHeader {
  uint32_t magic;
  uint32_t abi_version;
  uint32_t kind;          // GuestImageKind
  uint32_t reserved;
  uint64_t load_addr;     // where the image must be loaded
  uint64_t entry;         // absolute guest address of the entry point
  uint64_t file_end;      // absolute end of the bytes in the file (.text .rodata .data)
  uint64_t load_end;      // absolute end including .bss
};
static_assert(sizeof(GuestImageHeader) == 48);
static_assert(offsetof(GuestImageHeader, load_addr) == 16);
static_assert(offsetof(GuestImageHeader, entry) == 24);
static_assert(offsetof(GuestImageHeader, file_end) == 32);
static_assert(offsetof(GuestImageHeader, load_end) == 40);

}  // namespace instar::abi
