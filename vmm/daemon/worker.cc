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

#include "vmm/base/unique_fd.h"
#include "vmm/transport/open_overrides.h"

namespace instar::vmm::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// Closes every descriptor from 3 up except those in `keep` (the child must not hold other
// clients' sockets or the listening socket while it runs a command).
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

// In the child: never returns.
[[noreturn]] void ChildMain(const WorkOrder& order, const ChildSetup& setup,
                            const CommandRunner& runner, int out_fd, int err_fd) {
  if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) ::_exit(125);
  const int null = ::open("/dev/null", O_RDONLY);
  if (null < 0 || ::dup2(null, STDIN_FILENO) < 0) ::_exit(125);
  std::vector<int> keep;
  for (const auto& file : order.files) keep.push_back(file.second);
  CloseAllExcept(std::move(keep));
  if (setup) setup();
  // The client's identity, for every path the command opens from here on. Order matters:
  // groups and gid while still privileged, uid last.
  const Credentials& c = order.credentials;
  if (c.uid != 0 || c.gid != 0) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setgid(c.gid) != 0 ||
        ::setuid(c.uid) != 0) {
      std::fprintf(stderr, "instar: cannot take the client's credentials\n");
      ::_exit(1);
    }
  }
  if (!order.cwd.empty() && ::chdir(order.cwd.c_str()) != 0) {
    std::fprintf(stderr, "instar: cannot change to '%s'\n", order.cwd.c_str());
    ::_exit(1);
  }
  for (const auto& [name, fd] : order.files) SetOpenOverride(name, fd);
  std::vector<char*> argv;
  for (const std::string& a : order.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int code = runner(static_cast<int>(order.argv.size()), argv.data());
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace

WorkOutcome RunInChild(const WorkOrder& order, const ChildSetup& setup,
                       const CommandRunner& runner) {
  WorkOutcome outcome;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {1, "", "instar: pipe failed\n"};
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return {1, "", "instar: pipe failed\n"};
  UniqueFd err_read(err[0]), err_write(err[1]);

  const pid_t pid = ::fork();
  if (pid < 0) return {1, "", "instar: fork failed\n"};
  if (pid == 0) ChildMain(order, setup, runner, out_write.get(), err_write.get());
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
