// The machine the host builds: written into a plain buffer, no KVM needed.
#include "vmm/kvm/machine_layout.h"

#include <gtest/gtest.h>

#include <vector>

#include "abi/memory_map.h"

namespace instar::vmm {
namespace {

TEST(MachineLayout, StartsAtCpl3WithLongMode) {
  const kvm_sregs s = InitialSregs(kvm_sregs{});
  EXPECT_EQ(s.cs.selector, kUserCodeSelector);
  EXPECT_EQ(s.cs.dpl, 3);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.ss.selector, kUserDataSelector);
  EXPECT_NE(s.efer & (1u << 10), 0u);  // LMA
  EXPECT_EQ(s.cr3, abi::kPml4.base);
}

TEST(MachineLayout, EntryAndStack) {
  const kvm_regs r = InitialRegs(0x12345);
  EXPECT_EQ(r.rip, 0x12345u);
  EXPECT_LT(r.rsp, abi::kStackTop);
  EXPECT_GE(r.rsp, abi::kStack.base);
}

TEST(MachineLayout, BuildsTablesInsideRam) {
  std::vector<uint8_t> ram(abi::kGuestRamSize, 0);
  const GuestRam view{ram.data(), ram.size()};
  ASSERT_TRUE(BuildMachine(view).ok());
  // The PML4's first entry points at the PDPT and is present.
  const auto pml4e = view.Read<uint64_t>(abi::kPml4.base);
  EXPECT_EQ(pml4e & ~uint64_t{0xFFF}, abi::kPdpt.base);
  EXPECT_NE(pml4e & 1, 0u);
  EXPECT_LT(FaultFrameAddress(), abi::kRing0Stack.end());
  EXPECT_GE(FaultFrameAddress(), abi::kRing0Stack.base);
}

}  // namespace
}  // namespace instar::vmm
