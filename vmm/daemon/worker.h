// RunInWorker: one daemon request in a worker process (vmm/daemon/worker_pool.h): the daemon
// sends the order (the arguments, the client's directory and credentials, and the client's
// passed descriptors) over the worker's control socket and waits for the worker to say it
// took it (a worker that died idle is replaced: it ran nothing), collects stdout and stderr
// under a deadline and a size cap, kills the worker if the client hangs up, and reads the exit
// code the worker sends once its output is complete.
//
// WorkerMain, the worker process (`instard --worker`): prepares as the daemon (`setup`, e.g.
// opens /dev/kvm and starts building a machine) while it waits for its order, then takes the
// client's credentials (groups, gid, uid) before it touches anything of the client's, changes
// to the client's directory, maps passed descriptors onto the names the arguments use, runs
// the command, and reports its exit code. It serves one order and exits. Host-only.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/daemon/peer.h"
#include "vmm/daemon/worker_pool.h"

namespace instar::vmm::daemon {

struct WorkOrder {
  std::vector<std::string> argv;  // argv[0] is the operation name
  std::string cwd;
  std::vector<std::pair<std::string, int>> files;  // argument text -> descriptor (daemon's)
  Credentials credentials;
  std::chrono::milliseconds deadline{30000};
  int client_socket = -1;  // hang-up cancels the work
};

struct WorkOutcome {
  int exit_code = 0;
  std::string out;
  std::string err;
  bool timed_out = false;
  bool cancelled = false;
};

// Runs in the worker before the credentials change (e.g. opens the sandbox as the daemon).
using ChildSetup = std::function<void()>;
// The command itself, as main() would run it.
using CommandRunner = std::function<int(int argc, char** argv)>;

inline constexpr size_t kMaxCommandOutput = 8u << 20;

WorkOutcome RunInWorker(WorkerPool& pool, const WorkOrder& order);

// The worker process's main. Returns the command's exit code (0 when it was let go unused).
int WorkerMain(const ChildSetup& setup, const CommandRunner& runner);

}  // namespace instar::vmm::daemon
