// Vm: one throw-away KVM virtual machine: the VM fd, its RAM (one memslot at 0), and its single
// vCPU with the kvm_run mapping. Construction only; running is the launcher's job.
// Host-only.
#pragma once

#include <linux/kvm.h>

#include "vmm/base/mapping.h"
#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"

namespace instar::vmm {

class Vm {
 public:
  static StatusOr<Vm> Create(const KvmSystem& kvm, uint64_t ram_size);

  GuestRam ram() const { return memory_.ram(); }
  kvm_run* run() const { return reinterpret_cast<kvm_run*>(run_mapping_.data()); }
  int vcpu_fd() const { return vcpu_.get(); }

  Status SetRegisters(const kvm_sregs& sregs, const kvm_regs& regs);
  StatusOr<kvm_sregs> GetSregs() const;
  StatusOr<kvm_regs> GetRegs() const;
  // One KVM_RUN; returns 0 or -errno.
  int RunOnce();

 private:
  Vm(UniqueFd vm, GuestMemory memory, UniqueFd vcpu, Mapping run)
      : vm_(std::move(vm)), memory_(std::move(memory)), vcpu_(std::move(vcpu)),
        run_mapping_(std::move(run)) {}

  // Declaration order is teardown order in reverse: the run mapping and vCPU go first.
  UniqueFd vm_;
  GuestMemory memory_;
  UniqueFd vcpu_;
  Mapping run_mapping_;
};

}  // namespace instar::vmm
