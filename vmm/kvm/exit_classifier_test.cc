// Exit classification with synthetic kvm_run records.
#include "vmm/kvm/exit_classifier.h"

#include <gtest/gtest.h>

#include <vector>

#include "abi/memory_map.h"
#include "vmm/kvm/machine_layout.h"

namespace instar::vmm {
namespace {

kvm_run Mmio(uint64_t address, uint32_t len, bool write) {
  kvm_run run{};
  run.exit_reason = KVM_EXIT_MMIO;
  run.mmio.phys_addr = address;
  run.mmio.len = len;
  run.mmio.is_write = write ? 1 : 0;
  return run;
}

TEST(ExitClassifier, DoorbellIsAStoreToItsPage) {
  EXPECT_EQ(ClassifyExit(Mmio(abi::kDoorbell.base, 8, true)).kind, ExitKind::kDoorbell);
  EXPECT_EQ(ClassifyExit(Mmio(abi::kDoorbell.base, 8, false)).kind, ExitKind::kMmioViolation);
  EXPECT_EQ(ClassifyExit(Mmio(abi::kDoorbell.base + 8, 8, true)).kind,
            ExitKind::kMmioViolation);
}

TEST(ExitClassifier, OtherExits) {
  kvm_run run{};
  run.exit_reason = KVM_EXIT_HLT;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kHalt);
  run.exit_reason = KVM_EXIT_SHUTDOWN;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kShutdown);
  run.exit_reason = KVM_EXIT_IO;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kOther);
}

TEST(ExitClassifier, HaltOutsideTheStubsIsNotAFault) {
  std::vector<uint8_t> ram(abi::kGuestRamSize, 0);
  const GuestRam view{ram.data(), ram.size()};
  EXPECT_FALSE(InterpretHalt(view, 0x20000, FaultFrameAddress(), 0).from_stub);
}

TEST(ExitClassifier, ReadsTheStubsFrame) {
  std::vector<uint8_t> ram(abi::kGuestRamSize, 0);
  const GuestRam view{ram.data(), ram.size()};
  FaultFrame frame{14, 2, 0x20010, kUserCodeSelector, 0x202, 0x1FF000, kUserDataSelector};
  view.Write(FaultFrameAddress(), frame);
  const uint64_t stub_rip = abi::kExceptionStubs.base + 14 * kExceptionStubStride + 2;
  const FaultReport f = InterpretHalt(view, stub_rip, FaultFrameAddress(), 0x1FF000);
  ASSERT_TRUE(f.from_stub);
  EXPECT_EQ(f.vector, 14u);
  EXPECT_EQ(f.rip, 0x20010u);
  EXPECT_NE(DescribeFault(f).find("page fault"), std::string::npos);
}

}  // namespace
}  // namespace instar::vmm
