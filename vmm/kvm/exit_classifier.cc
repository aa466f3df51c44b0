#include "vmm/kvm/exit_classifier.h"

#include <cinttypes>
#include <cstdio>

#include "abi/memory_map.h"
#include "vmm/base/text_format.h"
#include "vmm/kvm/machine_layout.h"

namespace instar::vmm {

ExitEvent ClassifyExit(const kvm_run& run) {
  ExitEvent e{ExitKind::kOther};
  e.reason = run.exit_reason;
  switch (run.exit_reason) {
    case KVM_EXIT_MMIO:
      e.address = run.mmio.phys_addr;
      e.length = run.mmio.len;
      e.is_write = run.mmio.is_write != 0;
      e.kind = e.is_write && e.address == abi::kDoorbell.base && e.length >= 1 && e.length <= 8
                   ? ExitKind::kDoorbell
                   : ExitKind::kMmioViolation;
      return e;
    case KVM_EXIT_HLT:
      e.kind = ExitKind::kHalt;
      return e;
    case KVM_EXIT_SHUTDOWN:
      e.kind = ExitKind::kShutdown;
      return e;
    case KVM_EXIT_IO:
      e.address = run.io.port;
      e.length = run.io.size;
      e.is_write = run.io.direction == KVM_EXIT_IO_OUT;
      return e;
    default:
      return e;
  }
}

FaultReport InterpretHalt(const GuestRam& ram, uint64_t halt_rip, uint64_t halt_rsp,
                          uint64_t cr2) {
  FaultReport f;
  f.rip = halt_rip;
  const uint64_t stubs = abi::kExceptionStubs.base;
  const uint64_t stubs_end = stubs + uint64_t{kExceptionVectors} * kExceptionStubStride;
  if (halt_rip < stubs || halt_rip >= stubs_end || halt_rsp != FaultFrameAddress()) return f;
  const auto frame = ram.Read<FaultFrame>(FaultFrameAddress());
  // The vector the stub pushed must be the stub's own.
  if (frame.vector != (halt_rip - stubs) / kExceptionStubStride) return f;
  f.from_stub = true;
  f.vector = frame.vector;
  f.error_code = frame.error_code;
  f.rip = frame.rip;
  f.cr2 = cr2;
  return f;
}

std::string DescribeExit(const ExitEvent& event) {
  switch (event.kind) {
    case ExitKind::kMmioViolation:
      return Format("guest made a stray %u-byte MMIO %s at 0x%" PRIx64, event.length,
                    event.is_write ? "write" : "read", event.address);
    case ExitKind::kShutdown:
      return "guest triple-faulted";
    default:
      return Format("guest stopped with unexpected KVM exit %u", event.reason);
  }
}

}  // namespace instar::vmm
