#include "vmm/launcher/sandbox_factory.h"

#include "vmm/kvm/kvm_sandbox.h"
#include "vmm/process/process_sandbox.h"

namespace instar::vmm {

std::optional<SandboxChoice> ParseSandboxChoice(std::string_view text) {
  if (text == "auto") return SandboxChoice::kAuto;
  if (text == "kvm") return SandboxChoice::kKvm;
  if (text == "process") return SandboxChoice::kProcess;
  return std::nullopt;
}

StatusOr<std::unique_ptr<Sandbox>> OpenSandbox(SandboxChoice choice, std::string* notice,
                                               const char* kvm_device) {
  if (notice != nullptr) notice->clear();
  if (choice != SandboxChoice::kProcess) {
    auto kvm = KvmSandbox::Open(kvm_device);
    if (kvm.ok() || choice == SandboxChoice::kKvm) return kvm;
    if (notice != nullptr) {
      *notice = "KVM unavailable (" + kvm.status().message() +
                "); using the process sandbox";
    }
  }
  return ProcessSandbox::Open();
}

}  // namespace instar::vmm
