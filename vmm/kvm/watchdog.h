// Watchdog: a per-thread POSIX timer that, once the deadline passes, sets
// kvm_run.immediate_exit and keeps signalling the vCPU thread every millisecond, so KVM_RUN
// returns -EINTR even for a guest that never exits. Disarmed on destruction. Host-only.
#pragma once

#include <linux/kvm.h>
#include <time.h>

#include <chrono>

#include "vmm/base/status.h"

namespace instar::vmm {

class Watchdog {
 public:
  static StatusOr<Watchdog> Arm(kvm_run* run, std::chrono::milliseconds deadline);
  Watchdog(Watchdog&& o) noexcept;
  Watchdog& operator=(Watchdog&&) = delete;
  Watchdog(const Watchdog&) = delete;
  ~Watchdog();

  bool Expired() const { return std::chrono::steady_clock::now() >= deadline_; }

 private:
  Watchdog(timer_t timer, std::chrono::steady_clock::time_point deadline)
      : timer_(timer), deadline_(deadline) {}
  timer_t timer_{};
  bool armed_ = true;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace instar::vmm
