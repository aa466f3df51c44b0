#include "vmm/launcher/serving_filter.h"

#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace instar::vmm {

SyscallFilter ServingFilter(const DeviceSet& devices) {
  using F = SyscallFilter;
  std::vector<uint32_t> all;
  std::vector<uint32_t> writable;
  const auto add = [&](const Device& d) {
    all.push_back(static_cast<uint32_t>(d.fd.get()));
    if (d.limits.writable) writable.push_back(static_cast<uint32_t>(d.fd.get()));
  };
  for (const Device& d : devices.inputs) add(d);
  if (devices.output) add(*devices.output);

  F filter;
  // The request server's device I/O (vmm/transport/request_server.cc).
  if (!all.empty()) {
    filter.Allow(SYS_pread64, {F::OneOf(0, all)});
    filter.Allow(SYS_fdatasync, {F::OneOf(0, all)});
    filter.Allow(SYS_fsync, {F::OneOf(0, all)});
  }
  if (!writable.empty()) {
    filter.Allow(SYS_pwrite64, {F::OneOf(0, writable)});
    filter.Allow(SYS_ftruncate, {F::OneOf(0, writable)});
  }
  // The caller's hooks print progress and guest text; stdio looks at its descriptor once.
  filter.Allow(SYS_write, {F::OneOf(0, {STDOUT_FILENO, STDERR_FILENO})});
  filter.Allow(SYS_fstat, {F::OneOf(0, {STDOUT_FILENO, STDERR_FILENO})});
  filter.Allow(SYS_newfstatat,
               {F::OneOf(0, {STDOUT_FILENO, STDERR_FILENO}), F::OneOf(3, {AT_EMPTY_PATH})});
  // The allocator (reports, records, messages), never with executable pages.
  filter.Allow(SYS_mmap, {F::BitsClear(2, PROT_EXEC)});
  filter.Allow(SYS_mprotect, {F::BitsClear(2, PROT_EXEC)});
  filter.Allow(SYS_munmap).Allow(SYS_mremap).Allow(SYS_madvise).Allow(SYS_brk);
  // Locks, the clock, signal handlers returning (the KVM watchdog), abort() and the end of the
  // thread (glibc blocks signals, ASan drops its alternate signal stack) or of the process.
  filter.Allow(SYS_futex).Allow(SYS_sched_yield).Allow(SYS_clock_gettime);
  filter.Allow(SYS_rt_sigreturn).Allow(SYS_rt_sigprocmask).Allow(SYS_sigaltstack);
  filter.Allow(SYS_restart_syscall).Allow(SYS_getpid).Allow(SYS_gettid);
  filter.Allow(SYS_tgkill, {F::OneOf(0, {static_cast<uint32_t>(::getpid())}), F::OneOf(2, {SIGABRT})});
  filter.Allow(SYS_exit).Allow(SYS_exit_group);
  return filter;
}

}  // namespace instar::vmm
