// OpenSandbox: the backend a command asked for. kAuto takes KVM when /dev/kvm is usable and
// falls back to the process backend with a one-line notice. Host-only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"

namespace instar::vmm {

enum class SandboxChoice { kAuto, kKvm, kProcess };

std::optional<SandboxChoice> ParseSandboxChoice(std::string_view text);

// `notice` receives the fallback notice for kAuto (empty when none). `kvm_device` is the KVM
// device node to try.
StatusOr<std::unique_ptr<Sandbox>> OpenSandbox(SandboxChoice choice, std::string* notice,
                                               const char* kvm_device = "/dev/kvm");

}  // namespace instar::vmm
