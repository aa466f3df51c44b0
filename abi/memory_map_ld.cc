// Prints the memory map as linker-script symbol assignments, so the guest linker scripts use
// the same numbers as abi/memory_map.h.
#include <cinttypes>
#include <cstdio>

#include "abi/memory_map.h"

int main() {
  using namespace instar::abi;
  std::printf("INSTAR_RUNTIME_BASE = 0x%" PRIx64 ";\n", kRuntime.base);
  std::printf("INSTAR_RUNTIME_SIZE = 0x%" PRIx64 ";\n", kRuntime.size);
  std::printf("INSTAR_OPERATION_BASE = 0x%" PRIx64 ";\n", kOperation.base);
  std::printf("INSTAR_OPERATION_SIZE = 0x%" PRIx64 ";\n", kOperation.size);
  return 0;
}
