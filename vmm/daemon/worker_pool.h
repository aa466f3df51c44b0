// WorkerPool: worker processes started ahead of need, so a request pays only for handing its
// order over and running its guest. A worker is this executable re-executed as
// `instard --worker` (vmm/daemon/worker.h): it opens the sandbox, starts building a machine,
// and waits for its one order on a control socket. The pool keeps `spares` such workers idle
// (a keeper thread starts replacements as workers are taken, and replaces an idle worker that
// dies), hands one out per request (or starts one on the spot when none is idle), and reaps
// the workers whose requests are answered while they tear their machines down. Every worker
// serves one request and exits: nothing of one client's request is seen by another's.
// Destruction closes the idle workers' control sockets (they exit at once, having touched
// nothing), waits for every worker it still owns, and kills those that overstay a grace
// period. Host-only; the keeper thread blocks in poll.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"

namespace instar::vmm::daemon {

// Where a worker finds its control socket.
inline constexpr int kWorkerControlFd = 3;

// A started `instard --worker` process and the daemon's ends of its descriptors.
struct WorkerProcess {
  pid_t pid = -1;
  UniqueFd pidfd;    // readable once the process has exited
  UniqueFd control;  // the order goes in, the exit code comes back
  UniqueFd out, err;  // its stdout and stderr
};

// Forks and at once re-executes /proc/self/exe as `instard --worker` (the child of a
// multi-threaded process runs nothing else).
StatusOr<WorkerProcess> StartWorker();

// Kills the worker (if it still runs) and reaps it; the wait status.
int KillAndReap(WorkerProcess& worker);

class WorkerPool {
 public:
  explicit WorkerPool(uint32_t spares);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // An idle worker (the longest idle), or one started now when none is.
  StatusOr<WorkerProcess> Take();
  // A worker whose request is answered: reaped once it exits, killed if it overstays.
  void Retire(WorkerProcess worker);
  // A taken worker found dead before it took its order: reaped and counted.
  void Discard(WorkerProcess worker);
  void SetSpares(uint32_t spares);

  struct Counts {
    uint32_t spares = 0, idle = 0, retiring = 0;
    uint64_t started = 0;     // worker processes started, in the pool or on the spot
    uint64_t died_idle = 0;   // idle workers that died before use (replaced)
  };
  Counts counts() const;

 private:
  struct Retiring {
    WorkerProcess worker;
    std::chrono::steady_clock::time_point kill_at;
  };

  void Keep();
  void Wake();
  // One round of the keeper: reap, replace, then wait for something to change.
  void KeepOnce(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  uint32_t spares_;
  std::deque<WorkerProcess> idle_;
  std::vector<Retiring> retiring_;
  Counts counts_;
  uint32_t deaths_in_a_row_ = 0;  // idle workers dying at once: back off before restarting
  std::chrono::steady_clock::time_point restart_at_{};
  bool stopping_ = false;
  UniqueFd wake_;  // eventfd: the keeper's poll wakes on it
  std::thread keeper_;  // last: starts once everything above exists
};

}  // namespace instar::vmm::daemon
