#include "vmm/kvm/vm.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace instar::vmm {
namespace {

Status Errno(const char* what) {
  return Status(StatusCode::kUnavailable, std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

StatusOr<Vm> Vm::Create(const KvmSystem& kvm, uint64_t ram_size) {
  UniqueFd vm(::ioctl(kvm.fd(), KVM_CREATE_VM, 0));
  if (!vm.valid()) return Errno("KVM_CREATE_VM");
  INSTAR_ASSIGN_OR_RETURN(GuestMemory memory, GuestMemory::Allocate(ram_size));
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = ram_size;
  region.userspace_addr = reinterpret_cast<uint64_t>(memory.ram().base);
  if (::ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return Errno("KVM_SET_USER_MEMORY_REGION");
  }
  UniqueFd vcpu(::ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  if (!vcpu.valid()) return Errno("KVM_CREATE_VCPU");
  void* run = ::mmap(nullptr, kvm.vcpu_mmap_size(), PROT_READ | PROT_WRITE, MAP_SHARED,
                     vcpu.get(), 0);
  if (run == MAP_FAILED) return Errno("mmap kvm_run");
  return Vm(std::move(vm), std::move(memory), std::move(vcpu),
            Mapping(run, static_cast<size_t>(kvm.vcpu_mmap_size())));
}

Status Vm::SetRegisters(const kvm_sregs& sregs, const kvm_regs& regs) {
  if (::ioctl(vcpu_.get(), KVM_SET_SREGS, &sregs) < 0) return Errno("KVM_SET_SREGS");
  if (::ioctl(vcpu_.get(), KVM_SET_REGS, &regs) < 0) return Errno("KVM_SET_REGS");
  return Status::Ok();
}

StatusOr<kvm_sregs> Vm::GetSregs() const {
  kvm_sregs s{};
  if (::ioctl(vcpu_.get(), KVM_GET_SREGS, &s) < 0) return Errno("KVM_GET_SREGS");
  return s;
}

StatusOr<kvm_regs> Vm::GetRegs() const {
  kvm_regs r{};
  if (::ioctl(vcpu_.get(), KVM_GET_REGS, &r) < 0) return Errno("KVM_GET_REGS");
  return r;
}

int Vm::RunOnce() { return ::ioctl(vcpu_.get(), KVM_RUN, 0) < 0 ? -errno : 0; }

}  // namespace instar::vmm
