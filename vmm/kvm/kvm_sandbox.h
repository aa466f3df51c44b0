// KvmSandbox: the KVM backend. Each machine is a fresh VM (vmm/kvm/vm.h) with the host-built
// tables of machine_layout.h, run at CPL3 under the watchdog and the exit budget; doorbells
// are MMIO exits. Host-only.
#pragma once

#include <memory>

#include "vmm/base/status.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/launcher/sandbox.h"

namespace instar::vmm {

class KvmSandbox : public Sandbox {
 public:
  static StatusOr<std::unique_ptr<Sandbox>> Open(const char* device = "/dev/kvm");

  explicit KvmSandbox(KvmSystem kvm) : kvm_(std::move(kvm)) {}

  const char* name() const override { return "kvm"; }
  const EmbeddedImage& runtime() const override;
  StatusOr<std::unique_ptr<Machine>> NewMachine() const override;

 private:
  KvmSystem kvm_;
};

}  // namespace instar::vmm
