#include "vmm/launcher/guest_fault.h"

#include <cinttypes>
#include <cstdio>

#include "vmm/base/text_format.h"

namespace instar::vmm {

std::string ExceptionName(uint64_t vector) {
  static const char* const kNames[] = {
      "#DE divide error",        "#DB debug",           "NMI",
      "#BP breakpoint",          "#OF overflow",        "#BR bound range",
      "#UD invalid opcode",      "#NM device not available", "#DF double fault",
      "coprocessor overrun",     "#TS invalid TSS",     "#NP segment not present",
      "#SS stack fault",         "#GP general protection", "#PF page fault",
      "vector 15",               "#MF x87 error",       "#AC alignment check",
      "#MC machine check",       "#XM SIMD error",      "#VE virtualization",
      "#CP control protection"};
  if (vector < sizeof(kNames) / sizeof(kNames[0])) return kNames[vector];
  return "vector " + std::to_string(vector);
}

std::string DescribeFault(const FaultReport& fault) {
  if (!fault.from_stub) {
    return Format("guest halted outside an exception handler at rip 0x%" PRIx64, fault.rip);
  }
  if (fault.vector == 14) {
    return Format("guest crashed: %s at rip 0x%" PRIx64 " (address 0x%" PRIx64
                  ", error 0x%" PRIx64 ")",
                  ExceptionName(fault.vector).c_str(), fault.rip, fault.cr2, fault.error_code);
  }
  return Format("guest crashed: %s at rip 0x%" PRIx64 " (error 0x%" PRIx64 ")",
                ExceptionName(fault.vector).c_str(), fault.rip, fault.error_code);
}

}  // namespace instar::vmm
