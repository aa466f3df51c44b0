#include "vmm/kvm/kvm_sandbox.h"

#include <sys/syscall.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "abi/memory_map.h"
#include "vmm/kvm/exit_classifier.h"
#include "vmm/kvm/machine_layout.h"
#include "vmm/kvm/vm.h"
#include "vmm/kvm/watchdog.h"
#include "vmm/runtime/runtime_image.h"

namespace instar::vmm {
namespace {

using Clock = std::chrono::steady_clock;

class KvmMachine : public Machine {
 public:
  explicit KvmMachine(Vm vm) : vm_(std::move(vm)) {}

  GuestRam ram() const override { return vm_.ram(); }

  Status Run(uint64_t entry, RequestServer& server, const VmLimits& limits, Clock::time_point start,
             LaunchTimings& timings, SyscallFilter serving) override {
    INSTAR_ASSIGN_OR_RETURN(kvm_sregs reset, vm_.GetSregs());
    INSTAR_RETURN_IF_ERROR(vm_.SetRegisters(InitialSregs(reset), InitialRegs(entry)));
    INSTAR_ASSIGN_OR_RETURN(Watchdog watchdog, Watchdog::Arm(vm_.run(), limits.deadline));
    // From here on: run the vCPU, read its registers for a fault report, drop the watchdog.
    serving.Allow(SYS_ioctl, {SyscallFilter::OneOf(0, {static_cast<uint32_t>(vm_.vcpu_fd())}),
                              SyscallFilter::OneOf(1, {KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS})});
    serving.Allow(SYS_timer_delete);
    INSTAR_RETURN_IF_ERROR(serving.InstallOnThisThread());
    for (;;) {
      const int rc = vm_.RunOnce();
      if (watchdog.Expired()) {
        return GuestFailed("guest ran past its deadline of " +
                           std::to_string(limits.deadline.count()) + " ms and was stopped");
      }
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) return GuestFailed(std::string("KVM_RUN failed: ") + std::strerror(-rc));
      if (++timings.exits == 1) {
        timings.first_exit_us =
            std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      }
      if (timings.exits > limits.max_exits) {
        return GuestFailed("guest exceeded its budget of " + std::to_string(limits.max_exits) +
                           " exits and was stopped");
      }
      const ExitEvent event = ClassifyExit(*vm_.run());
      switch (event.kind) {
        case ExitKind::kDoorbell:
          if (server.Serve() == RequestServer::Next::kStop) return Status::Ok();
          break;
        case ExitKind::kHalt: {
          INSTAR_ASSIGN_OR_RETURN(kvm_regs regs, vm_.GetRegs());
          INSTAR_ASSIGN_OR_RETURN(kvm_sregs sregs, vm_.GetSregs());
          return GuestFailed(
              DescribeFault(InterpretHalt(vm_.ram(), regs.rip, regs.rsp, sregs.cr2)));
        }
        case ExitKind::kMmioViolation:
        case ExitKind::kShutdown:
        case ExitKind::kOther:
          return GuestFailed(DescribeExit(event));
      }
    }
  }

 private:
  Vm vm_;
};

}  // namespace

StatusOr<std::unique_ptr<Sandbox>> KvmSandbox::Open(const char* device) {
  INSTAR_ASSIGN_OR_RETURN(KvmSystem kvm, KvmSystem::Open(device));
  return std::unique_ptr<Sandbox>(std::make_unique<KvmSandbox>(std::move(kvm)));
}

const EmbeddedImage& KvmSandbox::runtime() const { return images::runtime; }

StatusOr<std::unique_ptr<Machine>> KvmSandbox::NewMachine() const {
  INSTAR_ASSIGN_OR_RETURN(Vm vm, Vm::Create(kvm_, abi::kGuestRamSize));
  INSTAR_RETURN_IF_ERROR(BuildMachine(vm.ram()));
  return std::unique_ptr<Machine>(std::make_unique<KvmMachine>(std::move(vm)));
}

}  // namespace instar::vmm
