// The two backends every test of guest behaviour runs in, and the test-name suffix for each
// (for INSTANTIATE_TEST_SUITE_P over a SandboxChoice parameter).
#pragma once

#include <string>

#include "gtest/gtest.h"
#include "vmm/launcher/sandbox_factory.h"

namespace instar::vmm {

inline auto SandboxBackends() {
  return ::testing::Values(SandboxChoice::kKvm, SandboxChoice::kProcess);
}

inline std::string SandboxTestName(const ::testing::TestParamInfo<SandboxChoice>& info) {
  return info.param == SandboxChoice::kKvm ? "Kvm" : "Process";
}

}  // namespace instar::vmm
