#include "vmm/kvm/watchdog.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

namespace instar::vmm {
namespace {

thread_local kvm_run* tl_run = nullptr;

void OnWatchdogSignal(int) {
  if (tl_run != nullptr) tl_run->immediate_exit = 1;
}

int WatchdogSignal() { return SIGRTMIN + 1; }

void InstallHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = OnWatchdogSignal;
    sa.sa_flags = SA_RESTART;  // host I/O restarts; KVM_RUN still returns -EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(WatchdogSignal(), &sa, nullptr);
  });
}

}  // namespace

StatusOr<Watchdog> Watchdog::Arm(kvm_run* run, std::chrono::milliseconds deadline) {
  InstallHandlerOnce();
  tl_run = run;
  run->immediate_exit = 0;
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = WatchdogSignal();
  ev._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
  timer_t timer;
  if (::timer_create(CLOCK_MONOTONIC, &ev, &timer) < 0) {
    tl_run = nullptr;
    return Internal(std::string("timer_create: ") + std::strerror(errno));
  }
  itimerspec spec{};
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline).count();
  spec.it_value.tv_sec = ns / 1000000000;
  spec.it_value.tv_nsec = ns % 1000000000;
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  spec.it_interval.tv_nsec = 1000000;
  if (::timer_settime(timer, 0, &spec, nullptr) < 0) {
    ::timer_delete(timer);
    tl_run = nullptr;
    return Internal(std::string("timer_settime: ") + std::strerror(errno));
  }
  return Watchdog(timer, std::chrono::steady_clock::now() + deadline);
}

Watchdog::Watchdog(Watchdog&& o) noexcept
    : timer_(o.timer_), armed_(o.armed_), deadline_(o.deadline_) {
  o.armed_ = false;
}

Watchdog::~Watchdog() {
  if (!armed_) return;
  ::timer_delete(timer_);
  tl_run = nullptr;
}

}  // namespace instar::vmm
