// RunOperation: one request, one fresh VM. Orders construction (verify images, create the VM,
// build the machine, load runtime and operation, write configs), runs the vCPU under the
// watchdog and the exit budget, serves doorbell requests, and tears everything down. Any way a
// guest can misbehave ends as a kGuestFailed status with a one-line reason. Host-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "vmm/base/status.h"
#include "vmm/images/embedded_image.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/transport/device.h"
#include "vmm/transport/request_server.h"

namespace instar::vmm {

struct VmLimits {
  std::chrono::milliseconds deadline{30000};
  uint64_t max_exits = 4'000'000;
};

struct OperationLaunch {
  const EmbeddedImage* operation = nullptr;
  std::vector<uint8_t> config;  // copied to OPERATION_CONFIG_ADDR; at most one page
  ExpectedResult expected_result;
  VmLimits limits;
  ServerHooks hooks;
};

struct LaunchTimings {
  double setup_us = 0;        // KVM_CREATE_VM until the first KVM_RUN (machine built, loaded)
  double first_exit_us = 0;   // KVM_CREATE_VM until the guest's first doorbell
  double total_us = 0;        // KVM_CREATE_VM until the VM is torn down
  uint64_t exits = 0;
};

struct OperationOutcome {
  OperationReport report;
  LaunchTimings timings;
};

// Succeeds when the guest completed and sent either its result or an error. `devices` is
// borrowed for the run (writes may grow a device's size).
StatusOr<OperationOutcome> RunOperation(const KvmSystem& kvm, DeviceSet& devices,
                                        const OperationLaunch& launch);

}  // namespace instar::vmm
