#include "vmm/launcher/prebuilt_sandbox.h"

#include <algorithm>
#include <utility>

namespace instar::vmm {

PrebuiltSandbox::PrebuiltSandbox(std::unique_ptr<Sandbox> inner, size_t ready, size_t expected)
    : inner_(std::move(inner)), target_(std::max<size_t>(ready, 1)), expected_(expected),
      builder_([this] { BuildAhead(); }) {}

PrebuiltSandbox::~PrebuiltSandbox() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  builder_.join();
  // The unused machines go with ready_, before inner_ (they may borrow from it).
}

bool PrebuiltSandbox::WantsBuild() const {
  return !failed_ && ready_.size() < std::min(target_, expected_);
}

void PrebuiltSandbox::BuildAhead() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || WantsBuild(); });
    if (stopping_) return;
    building_ = true;
    lock.unlock();
    StatusOr<std::unique_ptr<Machine>> machine = inner_->NewMachine();
    lock.lock();
    building_ = false;
    if (machine.ok()) {
      ready_.push_back(std::move(machine).value());
    } else {
      failed_ = true;
    }
    changed_.notify_all();
  }
}

StatusOr<std::unique_ptr<Machine>> PrebuiltSandbox::NewMachine() const {
  {
    std::unique_lock<std::mutex> lock(mu_);
    // A build in progress (or about to start) is nearer done than a new one.
    changed_.wait(lock, [&] { return !ready_.empty() || (!building_ && !WantsBuild()); });
    if (expected_ > 0) --expected_;
    failed_ = false;
    if (!ready_.empty()) {
      std::unique_ptr<Machine> machine = std::move(ready_.front());
      ready_.pop_front();
      changed_.notify_all();
      return machine;
    }
  }
  changed_.notify_all();
  return inner_->NewMachine();
}

void PrebuiltSandbox::ExpectMachines(size_t count) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    expected_ = count;
  }
  changed_.notify_all();
}

size_t PrebuiltSandbox::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size();
}

}  // namespace instar::vmm
