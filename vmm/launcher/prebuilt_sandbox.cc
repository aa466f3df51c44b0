#include "vmm/launcher/prebuilt_sandbox.h"

#include <algorithm>
#include <utility>

namespace instar::vmm {

// What NewMachine hands out: the machine, given back to the sandbox when the holder is done.
class PrebuiltSandbox::LentMachine : public Machine {
 public:
  LentMachine(std::unique_ptr<Machine> machine, const PrebuiltSandbox& owner)
      : machine_(std::move(machine)), owner_(owner) {}
  ~LentMachine() override { owner_.Retire(std::move(machine_)); }

  GuestRam ram() const override { return machine_->ram(); }
  Status Run(uint64_t entry, RequestServer& server, const VmLimits& limits,
             std::chrono::steady_clock::time_point start, LaunchTimings& timings,
             SyscallFilter serving) override {
    return machine_->Run(entry, server, limits, start, timings, std::move(serving));
  }

 private:
  std::unique_ptr<Machine> machine_;
  const PrebuiltSandbox& owner_;
};

PrebuiltSandbox::PrebuiltSandbox(std::unique_ptr<Sandbox> inner, size_t ready, size_t expected)
    : inner_(std::move(inner)), target_(std::max<size_t>(ready, 1)), expected_(expected),
      builder_([this] { Work(); }) {}

PrebuiltSandbox::~PrebuiltSandbox() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  builder_.join();
  // The machines still held go with ready_ and retired_, before inner_ (they may borrow
  // from it).
}

bool PrebuiltSandbox::WantsBuild() const {
  return !failed_ && ready_.size() < std::min(target_, expected_);
}

void PrebuiltSandbox::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || WantsBuild() || !retired_.empty(); });
    if (stopping_) return;
    // A machine someone may wait for comes before tearing down used ones.
    if (!WantsBuild()) {
      std::vector<std::unique_ptr<Machine>> used = std::move(retired_);
      retired_.clear();
      lock.unlock();
      used.clear();
      lock.lock();
      continue;
    }
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
      return std::unique_ptr<Machine>(std::make_unique<LentMachine>(std::move(machine), *this));
    }
  }
  changed_.notify_all();
  INSTAR_ASSIGN_OR_RETURN(std::unique_ptr<Machine> machine, inner_->NewMachine());
  return std::unique_ptr<Machine>(std::make_unique<LentMachine>(std::move(machine), *this));
}

void PrebuiltSandbox::Retire(std::unique_ptr<Machine> machine) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired_.push_back(std::move(machine));
  }
  changed_.notify_all();
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
