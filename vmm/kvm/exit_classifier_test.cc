#include "vmm/kvm/exit_classifier.h"

#include <vector>

#include "abi/memory_map.h"
#include "gtest/gtest.h"
#include "vmm/kvm/machine_layout.h"

namespace instar::vmm {
namespace {

kvm_run MmioExit(uint64_t addr, uint32_t len, bool write) {
  kvm_run run{};
  run.exit_reason = KVM_EXIT_MMIO;
  run.mmio.phys_addr = addr;
  run.mmio.len = len;
  run.mmio.is_write = write;
  return run;
}

TEST(ClassifyExit, DoorbellOnlyForWritesToTheDoorbellAddress) {
  EXPECT_EQ(ClassifyExit(MmioExit(abi::kDoorbell.base, 8, true)).kind, ExitKind::kDoorbell);
  EXPECT_EQ(ClassifyExit(MmioExit(abi::kDoorbell.base, 1, true)).kind, ExitKind::kDoorbell);
  EXPECT_EQ(ClassifyExit(MmioExit(abi::kDoorbell.base, 8, false)).kind,
            ExitKind::kMmioViolation);
  EXPECT_EQ(ClassifyExit(MmioExit(abi::kDoorbell.base + 8, 8, true)).kind,
            ExitKind::kMmioViolation);
  EXPECT_EQ(ClassifyExit(MmioExit(abi::kDoorbell.base, 0, true)).kind,
            ExitKind::kMmioViolation);
  EXPECT_EQ(ClassifyExit(MmioExit(0x40000000, 4, true)).kind, ExitKind::kMmioViolation);
}

TEST(ClassifyExit, OtherReasons) {
  kvm_run run{};
  run.exit_reason = KVM_EXIT_HLT;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kHalt);
  run.exit_reason = KVM_EXIT_SHUTDOWN;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kShutdown);
  run.exit_reason = KVM_EXIT_IO;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kOther);
  run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
  EXPECT_EQ(ClassifyExit(run).kind, ExitKind::kOther);
  EXPECT_NE(DescribeExit(ClassifyExit(run)).find("unexpected KVM exit"), std::string::npos);
}

TEST(InterpretHalt, ReadsTheFrameTheStubLeft) {
  std::vector<uint8_t> bytes(abi::kGuestRamSize, 0);
  GuestRam ram{bytes.data(), bytes.size()};
  const FaultFrame frame{14, 6, 0x20123, 0x33, 0x2, 0x2F0000, 0x2b};
  ram.Write(FaultFrameAddress(), frame);
  const uint64_t stub_hlt = abi::kExceptionStubs.base + 14 * kExceptionStubStride + 2;
  const FaultReport f = InterpretHalt(ram, stub_hlt, FaultFrameAddress(), 0xdead000);
  ASSERT_TRUE(f.from_stub);
  EXPECT_EQ(f.vector, 14u);
  EXPECT_EQ(f.rip, 0x20123u);
  EXPECT_EQ(f.cr2, 0xdead000u);
  EXPECT_NE(DescribeFault(f).find("#PF page fault at rip 0x20123 (address 0xdead000"),
            std::string::npos);
}

TEST(InterpretHalt, RefusesFramesThatDoNotMatchTheStub) {
  std::vector<uint8_t> bytes(abi::kGuestRamSize, 0);
  GuestRam ram{bytes.data(), bytes.size()};
  ram.Write(FaultFrameAddress(), FaultFrame{13, 0, 0x20000, 0x33, 2, 0, 0x2b});
  // Halted in the #UD stub but the frame says #GP: not trusted.
  const uint64_t ud_stub = abi::kExceptionStubs.base + 6 * kExceptionStubStride + 4;
  EXPECT_FALSE(InterpretHalt(ram, ud_stub, FaultFrameAddress(), 0).from_stub);
  // Wrong stack.
  EXPECT_FALSE(InterpretHalt(ram, ud_stub, FaultFrameAddress() - 8, 0).from_stub);
  // Outside the stubs.
  EXPECT_FALSE(InterpretHalt(ram, 0x20000, FaultFrameAddress(), 0).from_stub);
  EXPECT_NE(DescribeFault(InterpretHalt(ram, 0x20000, FaultFrameAddress(), 0))
                .find("outside an exception handler"),
            std::string::npos);
}

}  // namespace
}  // namespace instar::vmm
