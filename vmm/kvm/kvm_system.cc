#include "vmm/kvm/kvm_system.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace instar::vmm {

StatusOr<KvmSystem> KvmSystem::Open(const char* path) {
  UniqueFd fd(::open(path, O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    return Status(StatusCode::kUnavailable,
                  std::string("cannot open ") + path + ": " + std::strerror(errno));
  }
  const int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return Status(StatusCode::kUnavailable,
                  "unsupported KVM API version " + std::to_string(version));
  }
  const int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < static_cast<int>(sizeof(kvm_run))) {
    return Status(StatusCode::kUnavailable, "KVM_GET_VCPU_MMAP_SIZE failed");
  }
  return KvmSystem(std::move(fd), mmap_size);
}

}  // namespace instar::vmm
