// The machine the host builds before the first KVM_RUN: identity page tables (U bit only on
// user regions), GDT with Linux-compatible selectors, a 64-bit TSS whose RSP0 is the ring-0
// stack, an IDT whose 32 exception gates point at host-generated stubs (push vector; hlt), and
// the register state that starts the vCPU directly at CPL3. Pure: writes into a GuestRam and
// returns values; no KVM calls. Host-only.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "vmm/base/status.h"
#include "vmm/kvm/guest_memory.h"

namespace instar::vmm {

inline constexpr uint16_t kKernelCodeSelector = 0x08;
inline constexpr uint16_t kKernelDataSelector = 0x10;
inline constexpr uint16_t kUserCode32Selector = 0x23;
inline constexpr uint16_t kUserDataSelector = 0x2b;
inline constexpr uint16_t kUserCodeSelector = 0x33;
inline constexpr uint16_t kTssSelector = 0x40;
inline constexpr uint32_t kExceptionVectors = 32;
inline constexpr uint32_t kExceptionStubStride = 16;

// What a ring-0 stub leaves on the ring-0 stack: 7 words ending at TSS.RSP0.
struct FaultFrame {
  uint64_t vector;
  uint64_t error_code;
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};

// Writes page tables, GDT, TSS, IDT and exception stubs into `ram`.
Status BuildMachine(const GuestRam& ram);

// Special registers for a CPL3 start in 64-bit mode with the tables above.
kvm_sregs InitialSregs(const kvm_sregs& reset_state);
// General registers: RIP at `entry`, RSP at the top of the guest stack as after a call.
kvm_regs InitialRegs(uint64_t entry);

// The guest RSP the stubs leave behind (RSP0 minus the frame), for recognising a stub halt.
uint64_t FaultFrameAddress();

}  // namespace instar::vmm
