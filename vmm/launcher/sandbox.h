// The isolation backend a launch runs in. A Sandbox makes one fresh Machine per request: guest
// RAM laid out as abi/memory_map.h says, which the launcher fills, and a Run that executes the
// runtime from its entry, serving every doorbell with the RequestServer, until the guest stops
// or misbehaves. Two backends exist: KVM (vmm/kvm/kvm_sandbox) and a seccomp-confined process
// (vmm/process/process_sandbox). Host-only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "vmm/base/guest_ram.h"
#include "vmm/base/status.h"
#include "vmm/base/syscall_filter.h"
#include "vmm/images/embedded_image.h"
#include "vmm/transport/request_server.h"

namespace instar::vmm {

struct VmLimits {
  std::chrono::milliseconds deadline{30000};
  uint64_t max_exits = 4'000'000;
};

struct LaunchTimings {
  double setup_us = 0;        // machine creation until the guest is ready to run
  double first_exit_us = 0;   // machine creation until the guest's first doorbell
  double total_us = 0;        // machine creation until it is torn down
  uint64_t exits = 0;
};

class Machine {
 public:
  virtual ~Machine() = default;
  virtual GuestRam ram() const = 0;
  // OK when the guest stopped through the doorbell (complete or returned); kGuestFailed with a
  // one-line reason for a fault, a stray access, a forbidden system call, the deadline or the
  // exit budget. `start` is when the machine was created (for the timings). Once its own
  // set-up is done, before the guest's first instruction, the backend adds the system calls
  // its run loop makes to `serving` and installs the filter on the calling thread, which must
  // be a thread of its own that ends with the run (the filter cannot be removed).
  virtual Status Run(uint64_t entry, RequestServer& server, const VmLimits& limits,
                     std::chrono::steady_clock::time_point start, LaunchTimings& timings,
                     SyscallFilter serving) = 0;
};

class Sandbox {
 public:
  virtual ~Sandbox() = default;
  virtual const char* name() const = 0;  // "kvm" or "process"
  // The runtime blob built for this backend's doorbell.
  virtual const EmbeddedImage& runtime() const = 0;
  virtual StatusOr<std::unique_ptr<Machine>> NewMachine() const = 0;
  // A hint: the caller expects to ask for about `count` more machines (chain discovery, one
  // per layer). A sandbox that builds machines ahead (prebuilt_sandbox.h) builds no more than
  // that; the others ignore it.
  virtual void ExpectMachines(size_t /*count*/) const {}
};

}  // namespace instar::vmm
