// PrebuiltSandbox: a Sandbox that builds machines ahead of need and tears them down behind,
// so a launch pays only for loading and running its guest. A background thread keeps up to
// `ready` fresh machines built through the wrapped sandbox, no more than the caller expects to
// ask for (the constructor's `expected`, then ExpectMachines); NewMachine hands out a ready
// one, waits for a build in progress, or builds inline (which also reports a failure the
// builder met). Every machine is handed out once, before any guest ran in it: nothing is ever
// reused. A machine handed out comes back when its holder destroys it, and the same thread
// destroys it (a KVM VM's teardown costs about what building one does).
//
// Works for any backend whose NewMachine may run on another thread than the machine's Run.
// KVM: the vCPU is first run by the thread that received it, and the kernel binds it to that
// thread then. Process: a memfd and its mapping. Destruction stops the thread (waiting for a
// build in progress) and destroys the machines it still holds; machines handed out must not
// outlive it. Host-only; NewMachine may block.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"

namespace instar::vmm {

class PrebuiltSandbox : public Sandbox {
 public:
  // Keeps up to `ready` (at least 1) machines built, of the `expected` the caller will ask for.
  PrebuiltSandbox(std::unique_ptr<Sandbox> inner, size_t ready, size_t expected);
  ~PrebuiltSandbox() override;
  PrebuiltSandbox(const PrebuiltSandbox&) = delete;
  PrebuiltSandbox& operator=(const PrebuiltSandbox&) = delete;

  const char* name() const override { return inner_->name(); }
  const EmbeddedImage& runtime() const override { return inner_->runtime(); }
  StatusOr<std::unique_ptr<Machine>> NewMachine() const override;
  void ExpectMachines(size_t count) const override;

  // Machines built and not yet handed out (for tests).
  size_t ready() const;

 private:
  class LentMachine;

  void Work();
  bool WantsBuild() const;  // mu_ held
  void Retire(std::unique_ptr<Machine> machine) const;

  const std::unique_ptr<Sandbox> inner_;
  const size_t target_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  mutable std::deque<std::unique_ptr<Machine>> ready_;
  mutable std::vector<std::unique_ptr<Machine>> retired_;  // used, to be destroyed
  mutable size_t expected_;
  mutable bool building_ = false;
  // Set when a background build failed: the builder waits for the next hand-out before it
  // tries again, so a lasting failure costs one attempt per launch, reported inline.
  mutable bool failed_ = false;
  bool stopping_ = false;
  std::thread builder_;  // last: starts once everything above exists
};

}  // namespace instar::vmm
