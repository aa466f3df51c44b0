// RunInChild: one daemon request in a worker process: the daemon forks and the child at once
// re-executes the daemon binary as `instard --worker ORDER` (a fresh image: the child of a
// multi-threaded process must not run ordinary code, ASan's allocator locks included).
// WorkerMain, in that process, prepares as the daemon (e.g. opens /dev/kvm), takes the
// client's credentials (groups, gid, uid), changes to the client's directory, maps passed
// descriptors onto the names the arguments use, and runs the command. The daemon collects
// stdout and stderr under a deadline and a size cap, and kills the worker if the client hangs
// up. Host-only.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/daemon/peer.h"

namespace instar::vmm::daemon {

struct WorkOrder {
  std::vector<std::string> argv;  // argv[0] is the operation name
  std::string cwd;
  std::vector<std::pair<std::string, int>> files;  // argument text -> descriptor (parent's)
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

// Runs in the child before the credentials change (e.g. opens the sandbox as the daemon).
using ChildSetup = std::function<void()>;
// The command itself, as main() would run it.
using CommandRunner = std::function<int(int argc, char** argv)>;

inline constexpr size_t kMaxCommandOutput = 8u << 20;

WorkOutcome RunInChild(const WorkOrder& order);

// The worker process's main: `serialized_order` is the argument RunInChild passed. Returns the
// command's exit code.
int WorkerMain(const char* serialized_order, const ChildSetup& setup, const CommandRunner& runner);

}  // namespace instar::vmm::daemon
