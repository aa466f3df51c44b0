#include "vmm/launcher/operation_launcher.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "abi/memory_map.h"
#include "vmm/kvm/exit_classifier.h"
#include "vmm/kvm/machine_layout.h"
#include "vmm/kvm/vm.h"
#include "vmm/kvm/watchdog.h"
#include "vmm/images/operation_registry.h"

namespace instar::vmm {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void Load(const GuestRam& ram, const VerifiedImage& v) {
  std::memcpy(ram.Range(v.header.load_addr, v.image->size), v.image->bytes, v.image->size);
}

// Runs the vCPU until the guest stops or misbehaves; OK means it stopped through the doorbell.
Status RunLoop(Vm& vm, RequestServer& server, const VmLimits& limits, Clock::time_point t0,
               LaunchTimings& timings) {
  INSTAR_ASSIGN_OR_RETURN(Watchdog watchdog, Watchdog::Arm(vm.run(), limits.deadline));
  for (;;) {
    const int rc = vm.RunOnce();
    if (rc == -EINTR || rc == -EAGAIN || watchdog.Expired()) {
      if (watchdog.Expired()) {
        return GuestFailed("guest ran past its deadline of " +
                           std::to_string(limits.deadline.count()) + " ms and was stopped");
      }
      continue;
    }
    if (rc < 0) return GuestFailed(std::string("KVM_RUN failed: ") + std::strerror(-rc));
    if (++timings.exits == 1) timings.first_exit_us = MicrosSince(t0);
    if (timings.exits > limits.max_exits) {
      return GuestFailed("guest exceeded its budget of " + std::to_string(limits.max_exits) +
                         " exits and was stopped");
    }
    const ExitEvent event = ClassifyExit(*vm.run());
    switch (event.kind) {
      case ExitKind::kDoorbell:
        if (server.Serve() == RequestServer::Next::kStop) return Status::Ok();
        break;
      case ExitKind::kHalt: {
        INSTAR_ASSIGN_OR_RETURN(kvm_regs regs, vm.GetRegs());
        INSTAR_ASSIGN_OR_RETURN(kvm_sregs sregs, vm.GetSregs());
        return GuestFailed(DescribeFault(InterpretHalt(vm.ram(), regs.rip, regs.rsp, sregs.cr2)));
      }
      case ExitKind::kMmioViolation:
      case ExitKind::kShutdown:
      case ExitKind::kOther:
        return GuestFailed(DescribeExit(event));
    }
  }
}

}  // namespace

StatusOr<OperationOutcome> RunOperation(const KvmSystem& kvm, DeviceSet& devices,
                                        const OperationLaunch& launch) {
  if (launch.operation == nullptr) return Internal("no operation image");
  if (launch.config.size() > abi::kOperationConfig.size) return Internal("config too large");
  if (devices.inputs.size() > abi::kMaxInputDevices) return Internal("too many devices");
  INSTAR_ASSIGN_OR_RETURN(VerifiedImage runtime,
                          VerifyImage(RuntimeImage(), abi::GuestImageKind::kRuntime));
  INSTAR_ASSIGN_OR_RETURN(VerifiedImage operation,
                          VerifyImage(*launch.operation, abi::GuestImageKind::kOperation));

  OperationOutcome outcome;
  const auto t0 = Clock::now();
  {
    INSTAR_ASSIGN_OR_RETURN(Vm vm, Vm::Create(kvm, abi::kGuestRamSize));
    const GuestRam ram = vm.ram();
    INSTAR_RETURN_IF_ERROR(BuildMachine(ram));
    Load(ram, runtime);
    Load(ram, operation);
    if (!launch.config.empty()) {
      std::memcpy(ram.Range(abi::kOperationConfigAddr, launch.config.size()),
                  launch.config.data(), launch.config.size());
    }
    ram.Write(abi::kChainConfigAddr, DescribeDevices(devices));
    INSTAR_ASSIGN_OR_RETURN(kvm_sregs reset, vm.GetSregs());
    INSTAR_RETURN_IF_ERROR(
        vm.SetRegisters(InitialSregs(reset), InitialRegs(runtime.header.entry)));
    outcome.timings.setup_us = MicrosSince(t0);

    RequestServer server(ram, devices, launch.expected_result, launch.hooks);
    const Status run = RunLoop(vm, server, launch.limits, t0, outcome.timings);
    outcome.report = std::move(server.report());
    if (!run.ok()) return run;
  }
  outcome.timings.total_us = MicrosSince(t0);

  const OperationReport& r = outcome.report;
  if (r.returned) {
    return GuestFailed("guest operation returned (status " + std::to_string(*r.returned) +
                       ") without completing");
  }
  if (r.result.empty() && !r.error) {
    return GuestFailed("guest completed without sending a result");
  }
  return outcome;
}

}  // namespace instar::vmm
