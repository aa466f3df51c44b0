#include "vmm/launcher/operation_launcher.h"

#include <cstring>
#include <string>
#include <thread>

#include "abi/memory_map.h"
#include "vmm/launcher/serving_filter.h"

namespace instar::vmm {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void Load(const GuestRam& ram, const VerifiedImage& v) {
  std::memcpy(ram.Range(v.header.load_addr, v.image->size), v.image->bytes, v.image->size);
}

}  // namespace

StatusOr<OperationOutcome> RunOperation(const Sandbox& sandbox, DeviceSet& devices,
                                        const OperationLaunch& launch) {
  if (launch.operation == nullptr) return Internal("no operation image");
  if (launch.config.size() > abi::kOperationConfig.size) return Internal("config too large");
  if (devices.inputs.size() > abi::kMaxInputDevices) return Internal("too many devices");
  INSTAR_ASSIGN_OR_RETURN(VerifiedImage runtime,
                          VerifyImage(sandbox.runtime(), abi::GuestImageKind::kRuntime));
  INSTAR_ASSIGN_OR_RETURN(VerifiedImage operation,
                          VerifyImage(*launch.operation, abi::GuestImageKind::kOperation));

  OperationOutcome outcome;
  const auto t0 = Clock::now();
  {
    INSTAR_ASSIGN_OR_RETURN(std::unique_ptr<Machine> machine, sandbox.NewMachine());
    const GuestRam ram = machine->ram();
    Load(ram, runtime);
    Load(ram, operation);
    if (!launch.config.empty()) {
      std::memcpy(ram.Range(abi::kOperationConfigAddr, launch.config.size()),
                  launch.config.data(), launch.config.size());
    }
    ram.Write(abi::kChainConfigAddr, DescribeDevices(devices));
    outcome.timings.setup_us = MicrosSince(t0);

    RequestServer server(ram, devices, launch.expected_result, launch.hooks);
    // The guest is served by a thread of its own: the backend confines it with seccomp once
    // the machine is ready, and it ends with the run, so the filter never reaches the threads
    // that open files and build the next machines.
    Status run;
    std::thread serving([&] {
      run = machine->Run(runtime.header.entry, server, launch.limits, t0, outcome.timings,
                         ServingFilter(devices));
    });
    serving.join();
    outcome.report = std::move(server.report());
    if (!run.ok()) return run;
  }
  // Whatever the outcome, what was written is made durable, as qemu flushes every image it
  // closes.
  if (outcome.report.bytes_written != 0 && launch.hooks.durable_writes) {
    INSTAR_RETURN_IF_ERROR(SyncWritableDevices(devices));
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
