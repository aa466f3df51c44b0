// RunOperation: one request, one fresh machine in the given sandbox. Orders construction
// (verify images, create the machine, load runtime and operation, write configs), runs it, and
// checks how the guest ended. Any way a guest can misbehave ends as a kGuestFailed status with
// a one-line reason. Host-only.
#pragma once

#include <vector>

#include "vmm/base/status.h"
#include "vmm/images/embedded_image.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/transport/device.h"
#include "vmm/transport/request_server.h"

namespace instar::vmm {

struct OperationLaunch {
  const EmbeddedImage* operation = nullptr;
  std::vector<uint8_t> config;  // copied to OPERATION_CONFIG_ADDR; at most one page
  ExpectedResult expected_result;
  VmLimits limits;
  ServerHooks hooks;

  // Takes an operation's config struct (abi/<operation>.h) as the bytes to write.
  template <class Config>
  void SetConfig(const Config& c) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&c);
    config.assign(bytes, bytes + sizeof c);
  }
};

struct OperationOutcome {
  OperationReport report;
  LaunchTimings timings;
};

// Succeeds when the guest completed and sent either its result or an error. `devices` is
// borrowed for the run (writes may grow a device's size).
StatusOr<OperationOutcome> RunOperation(const Sandbox& sandbox, DeviceSet& devices,
                                        const OperationLaunch& launch);

}  // namespace instar::vmm
