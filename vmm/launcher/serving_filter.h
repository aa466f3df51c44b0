// The system calls the thread that runs a guest needs once its machine is built: device I/O
// on the attached descriptors only (reads on every device; writes, truncation and flushes on
// the writable ones), stdout and stderr for the caller's progress and debug hooks, memory for
// the allocator, futexes, signal return, the time, and ending the thread or the process. Each
// backend adds the few calls its own run loop makes (sandbox.h) and installs the result on
// the serving thread after its set-up; docs/security.md lists and explains the whole set.
// Host-only.
#pragma once

#include "vmm/base/syscall_filter.h"
#include "vmm/transport/device.h"

namespace instar::vmm {

SyscallFilter ServingFilter(const DeviceSet& devices);

}  // namespace instar::vmm
