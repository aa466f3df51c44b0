#include "vmm/base/guest_ram.h"

#include "abi/memory_map.h"

namespace instar::vmm {

uint8_t* GuestRam::UserRange(uint64_t gpa, uint64_t len) const {
  for (const abi::Region& r : abi::kUserRegions) {
    if (gpa >= r.base && gpa < r.end() && len <= r.end() - gpa) return Range(gpa, len);
  }
  return nullptr;
}

uint8_t* GuestRam::Range(uint64_t gpa, uint64_t len) const {
  if (gpa > size || len > size - gpa) return nullptr;
  return base + gpa;
}

}  // namespace instar::vmm
