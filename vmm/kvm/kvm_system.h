// KvmSystem: the /dev/kvm handle, checked for the stable API, plus the size of a vCPU's
// kvm_run mapping. Open once per process; each VM is created from it. Host-only.
#pragma once

#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"

namespace instar::vmm {

class KvmSystem {
 public:
  static StatusOr<KvmSystem> Open(const char* path = "/dev/kvm");
  int fd() const { return fd_.get(); }
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }

 private:
  KvmSystem(UniqueFd fd, int mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(mmap_size) {}
  UniqueFd fd_;
  int vcpu_mmap_size_ = 0;
};

}  // namespace instar::vmm
