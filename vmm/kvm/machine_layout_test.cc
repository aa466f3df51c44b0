#include "vmm/kvm/machine_layout.h"

#include <vector>

#include "abi/memory_map.h"
#include "gtest/gtest.h"
#include "vmm/kvm/guest_memory.h"

namespace instar::vmm {
namespace {

constexpr uint64_t kPresent = 1, kUser = 4, kLarge = 0x80;

class MachineLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ram_bytes_.assign(abi::kGuestRamSize, 0);
    ram_ = {ram_bytes_.data(), ram_bytes_.size()};
    ASSERT_TRUE(BuildMachine(ram_).ok());
  }

  // Walks the page tables like the MMU: returns the leaf entry for `addr` (0 when absent) and
  // whether every level allows user access.
  uint64_t Leaf(uint64_t addr, bool* user) const {
    const uint64_t pml4e = ram_.Read<uint64_t>(abi::kPml4.base + 8 * ((addr >> 39) & 511));
    if (!(pml4e & kPresent)) return 0;
    const uint64_t pdpte = ram_.Read<uint64_t>((pml4e & ~0xFFFull) + 8 * ((addr >> 30) & 511));
    if (!(pdpte & kPresent)) return 0;
    const uint64_t pde = ram_.Read<uint64_t>((pdpte & ~0xFFFull) + 8 * ((addr >> 21) & 511));
    if (!(pde & kPresent)) return 0;
    *user = (pml4e & kUser) && (pdpte & kUser) && (pde & kUser);
    if (pde & kLarge) return pde;
    const uint64_t pte = ram_.Read<uint64_t>((pde & ~0xFFFull) + 8 * ((addr >> 12) & 511));
    *user = *user && (pte & kUser);
    return pte;
  }

  std::vector<uint8_t> ram_bytes_;
  GuestRam ram_;
};

TEST_F(MachineLayoutTest, UserRegionsAreUserAndIdentityMapped) {
  for (const abi::Region& r : abi::kUserRegions) {
    for (uint64_t a = r.base; a < r.end(); a += abi::kPageSize) {
      bool user = false;
      const uint64_t leaf = Leaf(a, &user);
      ASSERT_TRUE(leaf & kPresent) << std::hex << a;
      ASSERT_TRUE(user) << std::hex << a;
      const uint64_t frame = (leaf & kLarge) ? (leaf & ~0x1FFFFFull) + (a & 0x1FFFFF)
                                             : (leaf & ~0xFFFull);
      ASSERT_EQ(frame & ~0xFFFull, a) << std::hex << a;
    }
  }
}

TEST_F(MachineLayoutTest, SupervisorPagesAreNotUserAccessible) {
  for (const abi::Region& r : abi::kSupervisorRegions) {
    bool user = true;
    ASSERT_TRUE(Leaf(r.base, &user) & kPresent);
    EXPECT_FALSE(user) << std::hex << r.base;
  }
}

TEST_F(MachineLayoutTest, GuardsAndGapsAreAbsent) {
  bool user = false;
  EXPECT_EQ(Leaf(0, &user), 0u) << "null page";
  EXPECT_EQ(Leaf(abi::kStackGuard.base, &user), 0u) << "stack guard";
  EXPECT_EQ(Leaf(abi::kTransport.end(), &user), 0u) << "gap after transport";
  EXPECT_EQ(Leaf(abi::kScratch.end(), &user), 0u) << "gap after scratch";
  EXPECT_EQ(Leaf(abi::kDoorbell.base + abi::kPageSize, &user), 0u) << "beyond doorbell";
}

TEST_F(MachineLayoutTest, DoorbellIsUserMappedOutsideRam) {
  bool user = false;
  EXPECT_TRUE(Leaf(abi::kDoorbell.base, &user) & kPresent);
  EXPECT_TRUE(user);
}

TEST_F(MachineLayoutTest, TssPointsAtRing0StackAndIdtAtStubs) {
  EXPECT_EQ(ram_.Read<uint64_t>(abi::kTss.base + 4), abi::kRing0Stack.end());
  for (uint32_t v = 0; v < kExceptionVectors; ++v) {
    const uint64_t low = ram_.Read<uint64_t>(abi::kIdt.base + 16 * v);
    const uint64_t target = (low & 0xFFFF) | (((low >> 48) & 0xFFFF) << 16);
    EXPECT_EQ(target, abi::kExceptionStubs.base + v * kExceptionStubStride);
    EXPECT_EQ((low >> 40) & 0xFF, 0x8Eu) << "present DPL0 interrupt gate";
  }
  // Stub for #UD (no CPU error code): push 0; push 6; hlt.
  const uint8_t* ud = ram_.Range(abi::kExceptionStubs.base + 6 * kExceptionStubStride, 5);
  EXPECT_EQ(ud[0], 0x6A);
  EXPECT_EQ(ud[3], 6);
  EXPECT_EQ(ud[4], 0xF4);
  // Stub for #PF (CPU pushes the error code): push 14; hlt.
  const uint8_t* pf = ram_.Range(abi::kExceptionStubs.base + 14 * kExceptionStubStride, 3);
  EXPECT_EQ(pf[1], 14);
  EXPECT_EQ(pf[2], 0xF4);
}

TEST(InitialRegisters, StartAtCpl3InLongMode) {
  const kvm_sregs s = InitialSregs(kvm_sregs{});
  EXPECT_EQ(s.cs.selector, kUserCodeSelector);
  EXPECT_EQ(s.cs.dpl, 3);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.ss.selector, kUserDataSelector);
  EXPECT_EQ(s.tr.selector, kTssSelector);
  EXPECT_EQ(s.cr3, abi::kPml4.base);
  EXPECT_EQ(s.efer & 0x500, 0x500u) << "LME and LMA";
  const kvm_regs r = InitialRegs(0x10030);
  EXPECT_EQ(r.rip, 0x10030u);
  EXPECT_EQ((r.rsp + 8) % 16, 0u);
  EXPECT_EQ(r.rflags & 0x200, 0u) << "interrupts stay off";
}

}  // namespace
}  // namespace instar::vmm
