// FaultReport: a CPU exception the guest raised, as either backend reports it (the KVM
// ring-0 stub's frame, or the process loader's signal frame), and its one-line description.
// Host-only.
#pragma once

#include <cstdint>
#include <string>

namespace instar::vmm {

struct FaultReport {
  bool from_stub = false;  // the frame came from our exception path and can be trusted
  uint64_t vector = 0;
  uint64_t error_code = 0;
  uint64_t rip = 0;
  uint64_t cr2 = 0;
};

// "#PF page fault" etc.; "vector N" for the reserved ones.
std::string ExceptionName(uint64_t vector);
// "guest crashed: #PF page fault at rip 0x20123 (address 0x0, error 0x6)".
std::string DescribeFault(const FaultReport& fault);

}  // namespace instar::vmm
