#include "vmm/kvm/guest_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <string>

#include "abi/memory_map.h"

namespace instar::vmm {

StatusOr<GuestMemory> GuestMemory::Allocate(uint64_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status(StatusCode::kIoError, std::string("guest memory: ") + strerror(errno));
  }
  return GuestMemory(Mapping(p, size));
}

}  // namespace instar::vmm
