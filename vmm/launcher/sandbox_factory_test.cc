#include "vmm/launcher/sandbox_factory.h"

#include <string>

#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

TEST(SandboxFactory, ParsesChoices) {
  EXPECT_EQ(ParseSandboxChoice("kvm"), SandboxChoice::kKvm);
  EXPECT_EQ(ParseSandboxChoice("process"), SandboxChoice::kProcess);
  EXPECT_EQ(ParseSandboxChoice("auto"), SandboxChoice::kAuto);
  EXPECT_FALSE(ParseSandboxChoice("KVM").has_value());
  EXPECT_FALSE(ParseSandboxChoice("").has_value());
}

TEST(SandboxFactory, AutoFallsBackToTheProcessSandboxWithANotice) {
  std::string notice;
  auto sandbox = OpenSandbox(SandboxChoice::kAuto, &notice, "/nonexistent/kvm");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
  EXPECT_STREQ((*sandbox)->name(), "process");
  EXPECT_NE(notice.find("KVM unavailable (cannot open /nonexistent/kvm"), std::string::npos)
      << notice;
  EXPECT_NE(notice.find("using the process sandbox"), std::string::npos);
}

TEST(SandboxFactory, KvmOnlyFailsWithoutKvm) {
  auto sandbox = OpenSandbox(SandboxChoice::kKvm, nullptr, "/nonexistent/kvm");
  ASSERT_FALSE(sandbox.ok());
  EXPECT_EQ(sandbox.status().code(), StatusCode::kUnavailable);
}

TEST(SandboxFactory, ProcessNeverNeedsKvm) {
  std::string notice = "stale";
  auto sandbox = OpenSandbox(SandboxChoice::kProcess, &notice, "/nonexistent/kvm");
  ASSERT_TRUE(sandbox.ok());
  EXPECT_STREQ((*sandbox)->name(), "process");
  EXPECT_TRUE(notice.empty());
}

}  // namespace
}  // namespace instar::vmm
