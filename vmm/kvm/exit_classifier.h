// Pure interpretation of what the vCPU did: a kvm_run exit record becomes an ExitEvent, and a
// halt becomes a FaultReport (vmm/launcher/guest_fault.h) read from the ring-0 stack. No KVM calls; unit-tested with
// synthetic records. Host-only.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>

#include "vmm/kvm/guest_memory.h"
#include "vmm/launcher/guest_fault.h"

namespace instar::vmm {

enum class ExitKind {
  kDoorbell,        // a store of 1..8 bytes to the doorbell page
  kMmioViolation,   // any other MMIO access (a read, another address, odd length)
  kHalt,            // a ring-0 stub halted: a CPU exception
  kShutdown,        // triple fault
  kOther,           // anything else KVM reports (fail entry, internal error, port I/O, ...)
};

struct ExitEvent {
  ExitKind kind;
  uint64_t address = 0;
  uint32_t length = 0;
  bool is_write = false;
  uint32_t reason = 0;  // kvm_run.exit_reason
};

ExitEvent ClassifyExit(const kvm_run& run);

// Reads the frame the stub left below RSP0. `halt_rip`/`halt_rsp` are the vCPU's registers at
// the halt; a halt anywhere else (or with another stack) is reported with from_stub = false.
FaultReport InterpretHalt(const GuestRam& ram, uint64_t halt_rip, uint64_t halt_rsp,
                          uint64_t cr2);

std::string DescribeExit(const ExitEvent& event);

}  // namespace instar::vmm
