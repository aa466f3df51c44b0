// ProcessSandbox: the backend for hosts without /dev/kvm. Each machine is a memfd of guest
// RAM; Run starts the embedded loader (vmm/process/loader) in a fresh process that maps the
// memfd at the guest addresses, confines itself with seccomp to the doorbell pipes and jumps
// to the process runtime. The supervisor serves the same request descriptors with the same
// RequestServer as the KVM backend, under the same deadline and exit budget. Host-only.
#pragma once

#include <memory>

#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"
#include "vmm/launcher/sandbox.h"

namespace instar::vmm {

class ProcessSandbox : public Sandbox {
 public:
  // Verifies the embedded loader and keeps it in a sealed memfd for every launch.
  static StatusOr<std::unique_ptr<Sandbox>> Open();
  explicit ProcessSandbox(UniqueFd loader) : loader_(std::move(loader)) {}

  const char* name() const override { return "process"; }
  const EmbeddedImage& runtime() const override;
  StatusOr<std::unique_ptr<Machine>> NewMachine() const override;

 private:
  UniqueFd loader_;
};

}  // namespace instar::vmm
