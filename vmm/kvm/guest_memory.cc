#include "vmm/kvm/guest_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <string>

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

StatusOr<GuestMemory> GuestMemory::Allocate(uint64_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status(StatusCode::kIoError, std::string("guest memory: ") + strerror(errno));
  }
  return GuestMemory(Mapping(p, size));
}

}  // namespace instar::vmm
