#include "vmm/daemon/worker.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "nlohmann/json.hpp"
#include "vmm/base/unique_fd.h"
#include "vmm/transport/open_overrides.h"

namespace instar::vmm::daemon {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kFirstFileFd = 100;  // passed descriptors sit at 100, 101, ... in the worker

// Closes every descriptor from 3 up except those in `keep` (the worker must not hold anything
// of the daemon's).
void CloseAllExcept(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned first = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > first) ::close_range(first, static_cast<unsigned>(fd) - 1, 0);
    first = static_cast<unsigned>(fd) + 1;
  }
  ::close_range(first, ~0u, 0);
}

// The order as the worker process receives it: one JSON argument (built before fork: the
// child of a multi-threaded daemon may only make async-signal-safe calls until it execs).
std::string SerializeOrder(const WorkOrder& order) {
  nlohmann::json j;
  j["argv"] = order.argv;
  j["cwd"] = order.cwd;
  j["uid"] = order.credentials.uid;
  j["gid"] = order.credentials.gid;
  j["groups"] = order.credentials.groups;
  nlohmann::json files = nlohmann::json::array();
  for (size_t i = 0; i < order.files.size(); ++i) {
    files.push_back({order.files[i].first, kFirstFileFd + static_cast<int>(i)});
  }
  j["files"] = files;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// In the forked child: wire stdio and the passed descriptors, then exec a fresh worker (a new
// image: no lock another daemon thread held at fork time can be inherited).
[[noreturn]] void ExecWorker(const WorkOrder& order, char* const* argv, int out_fd, int err_fd) {
  if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) ::_exit(125);
  const int null = ::open("/dev/null", O_RDONLY);
  if (null < 0 || ::dup2(null, STDIN_FILENO) < 0) ::_exit(125);
  for (size_t i = 0; i < order.files.size(); ++i) {
    if (::dup2(order.files[i].second, kFirstFileFd + static_cast<int>(i)) < 0) ::_exit(125);
  }
  ::execv("/proc/self/exe", argv);
  ::_exit(127);
}

}  // namespace

int WorkerMain(const char* serialized_order, const ChildSetup& setup,
               const CommandRunner& runner) {
  const auto j = nlohmann::json::parse(serialized_order, nullptr, false);
  if (!j.is_object()) return 125;
  std::vector<std::string> args = j.value("argv", std::vector<std::string>{});
  const std::string cwd = j.value("cwd", "");
  Credentials c;
  c.uid = j.value("uid", 0u);
  c.gid = j.value("gid", 0u);
  c.groups = j.value("groups", std::vector<gid_t>{});
  std::vector<std::pair<std::string, int>> files;
  std::vector<int> keep;
  for (const auto& f : j.value("files", nlohmann::json::array())) {
    files.emplace_back(f.at(0).get<std::string>(), f.at(1).get<int>());
    keep.push_back(files.back().second);
  }
  CloseAllExcept(keep);
  if (args.empty()) return 125;
  if (setup) setup();
  // The client's identity, for every path the command opens from here on. Order matters:
  // groups and gid while still privileged, uid last.
  if (c.uid != 0 || c.gid != 0) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setgid(c.gid) != 0 ||
        ::setuid(c.uid) != 0) {
      std::fprintf(stderr, "instar: cannot take the client's credentials\n");
      return 1;
    }
  }
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
    std::fprintf(stderr, "instar: cannot change to '%s'\n", cwd.c_str());
    return 1;
  }
  for (const auto& [name, fd] : files) SetOpenOverride(name, fd);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int code = runner(static_cast<int>(args.size()), argv.data());
  std::fflush(stdout);
  std::fflush(stderr);
  return code;
}

WorkOutcome RunInChild(const WorkOrder& order) {
  WorkOutcome outcome;
  std::string serialized = SerializeOrder(order);
  char worker_name[] = "instard-worker";
  char worker_flag[] = "--worker";
  char* const worker_argv[] = {worker_name, worker_flag, serialized.data(), nullptr};
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {1, "", "instar: pipe failed\n"};
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return {1, "", "instar: pipe failed\n"};
  UniqueFd err_read(err[0]), err_write(err[1]);

  const pid_t pid = ::fork();
  if (pid < 0) return {1, "", "instar: fork failed\n"};
  if (pid == 0) ExecWorker(order, worker_argv, out_write.get(), err_write.get());
  out_write.Reset();
  err_write.Reset();

  const auto deadline = Clock::now() + order.deadline;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      outcome.timed_out = true;
      break;
    }
    pollfd p[3] = {{out_open ? out_read.get() : -1, POLLIN, 0},
                   {err_open ? err_read.get() : -1, POLLIN, 0},
                   {order.client_socket, POLLRDHUP, 0}};
    const int ready = ::poll(p, 3, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      outcome.cancelled = true;
      break;
    }
    char buffer[65536];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(p[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      std::string& sink = i == 0 ? outcome.out : outcome.err;
      if (sink.size() + static_cast<size_t>(n) > kMaxCommandOutput) {
        outcome.cancelled = true;
        out_open = err_open = false;
        break;
      }
      sink.append(buffer, static_cast<size_t>(n));
    }
  }
  if (outcome.timed_out || outcome.cancelled) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (WIFSIGNALED(status) && !outcome.timed_out && !outcome.cancelled) {
    outcome.err += "instar: the worker died with signal " + std::to_string(WTERMSIG(status)) + "\n";
  }
  return outcome;
}

}  // namespace instar::vmm::daemon
