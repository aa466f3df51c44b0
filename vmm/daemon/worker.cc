#include "vmm/daemon/worker.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "nlohmann/json.hpp"
#include "vmm/base/std_stream.h"
#include "vmm/base/text_format.h"
#include "vmm/base/unique_fd.h"
#include "vmm/transport/open_overrides.h"

namespace instar::vmm::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// The daemon's log (its stderr), where a worker's late diagnostics go once its output closed.
constexpr int kWorkerLogFd = kWorkerControlFd + 1;
// An order is a 4-byte length and that much JSON; its size is bounded by the request's.
constexpr uint32_t kMaxOrderBytes = 4u << 20;
// How many idle workers found dead are replaced before a request gives up.
constexpr int kTakeAttempts = 3;

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

// The order on the wire: its length, then JSON. Descriptors travel with the first byte, in
// the order of `files`, which the JSON names by index.
std::string FrameOrder(const WorkOrder& order) {
  nlohmann::json j;
  j["argv"] = order.argv;
  j["cwd"] = order.cwd;
  j["uid"] = order.credentials.uid;
  j["gid"] = order.credentials.gid;
  j["groups"] = order.credentials.groups;
  nlohmann::json files = nlohmann::json::array();
  for (size_t i = 0; i < order.files.size(); ++i) files.push_back({order.files[i].first, i});
  j["files"] = files;
  const std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto length = static_cast<uint32_t>(body.size());
  std::string framed(reinterpret_cast<const char*>(&length), sizeof length);
  return framed + body;
}

// The worker's side: false when the daemon closed the socket first (the worker was let go)
// or sent something malformed.
bool ReceiveOrder(std::string* body, std::vector<UniqueFd>* fds) {
  std::string data;
  char buffer[65536];
  uint32_t length = 0;
  for (;;) {
    if (data.size() >= sizeof length) {
      std::memcpy(&length, data.data(), sizeof length);
      if (length > kMaxOrderBytes) return false;
      if (data.size() - sizeof length >= length) break;
    }
    auto n = ReceiveWithFds(kWorkerControlFd, buffer, sizeof buffer, fds);
    if (!n.ok() || *n == 0) return false;
    data.append(buffer, *n);
  }
  *body = data.substr(sizeof length, length);
  return true;
}

WorkOutcome Failed(const std::string& why) { return {1, "", "instar: " + why + "\n"}; }

// Reads `size` bytes the worker sends on its control socket; false if it died first or the
// deadline passed.
bool ReceiveFromWorker(int control, void* data, size_t size, Clock::time_point deadline) {
  size_t got = 0;
  while (got < size) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{control, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) return false;
    const ssize_t n = ::read(control, static_cast<char*>(data) + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int WorkerMain(const ChildSetup& setup, const CommandRunner& runner) {
  ::fcntl(kWorkerControlFd, F_SETFD, FD_CLOEXEC);
  ::fcntl(kWorkerLogFd, F_SETFD, FD_CLOEXEC);
  CloseAllExcept({kWorkerControlFd, kWorkerLogFd});
  if (setup) setup();

  std::string body;
  std::vector<UniqueFd> passed;  // close-on-exec, as received
  if (!ReceiveOrder(&body, &passed)) return 0;
  // Taken: from here on a failure belongs to this request (before, the daemon tries another).
  const char taken = 1;
  if (::write(kWorkerControlFd, &taken, 1) != 1) return 0;
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return 125;
  std::vector<std::string> args = j.value("argv", std::vector<std::string>{});
  const std::string cwd = j.value("cwd", "");
  Credentials c;
  c.uid = j.value("uid", 0u);
  c.gid = j.value("gid", 0u);
  c.groups = j.value("groups", std::vector<gid_t>{});
  if (args.empty()) return 125;
  // The client's identity, before anything of the client's is touched: every path the command
  // opens from here on is opened with its permissions. Order matters: groups and gid while
  // still privileged, uid last.
  if (c.uid != 0 || c.gid != 0) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setgid(c.gid) != 0 ||
        ::setuid(c.uid) != 0) {
      Emit(stderr, "instar: cannot take the client's credentials\n");
      return 1;
    }
  }
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
    Emit(stderr, Format("instar: cannot change to '%s'\n", cwd.c_str()));
    return 1;
  }
  for (const auto& f : j.value("files", nlohmann::json::array())) {
    const size_t index = f.at(1).get<size_t>();
    if (index >= passed.size()) return 125;
    SetOpenOverride(f.at(0).get<std::string>(), passed[index].get());
  }
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int32_t code = runner(static_cast<int>(args.size()), argv.data());

  // The output is complete: close it (the daemon sees its end) and send the exit code, so the
  // reply goes out while this process tears its machines down and exits.
  (void)std::fflush(stdout);
  (void)std::fflush(stderr);
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null < 0 || ::dup2(null, STDOUT_FILENO) < 0 || ::dup2(kWorkerLogFd, STDERR_FILENO) < 0) {
    return code;  // the daemon then learns the code from the exit status
  }
  ::close(null);
  (void)!::write(kWorkerControlFd, &code, sizeof code);
  return code;
}

WorkOutcome RunInWorker(WorkerPool& pool, const WorkOrder& order) {
  const auto deadline = Clock::now() + order.deadline;
  const std::string framed = FrameOrder(order);
  std::vector<int> fds;
  for (const auto& f : order.files) fds.push_back(f.second);

  // A worker that died while idle cannot take the order (the send fails, or it never says it
  // took it); another one can: it ran nothing.
  WorkerProcess worker;
  for (int attempt = 1;; ++attempt) {
    StatusOr<WorkerProcess> candidate = pool.Take();
    if (!candidate.ok()) return Failed("cannot start a worker: " + candidate.status().message());
    // A large order waits for a worker still starting to read it, no longer than the deadline.
    const int64_t left_us = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count());
    const timeval send_timeout{static_cast<time_t>(left_us / 1000000),
                               static_cast<suseconds_t>(left_us % 1000000)};
    ::setsockopt(candidate->control.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
                 sizeof send_timeout);
    char taken = 0;
    if (SendWithFds(candidate->control.get(), framed.data(), framed.size(), fds).ok() &&
        ReceiveFromWorker(candidate->control.get(), &taken, 1, deadline)) {
      worker = std::move(candidate).value();
      break;
    }
    if (Clock::now() >= deadline) {
      KillAndReap(*candidate);
      WorkOutcome late;
      late.timed_out = true;
      return late;
    }
    pool.Discard(std::move(candidate).value());
    if (attempt == kTakeAttempts) return Failed("workers died before taking their order");
  }

  WorkOutcome outcome;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      outcome.timed_out = true;
      break;
    }
    pollfd p[3] = {{out_open ? worker.out.get() : -1, POLLIN, 0},
                   {err_open ? worker.err.get() : -1, POLLIN, 0},
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
  if (!outcome.timed_out && !outcome.cancelled) {
    int32_t code = 0;
    if (ReceiveFromWorker(worker.control.get(), &code, sizeof code, deadline)) {
      outcome.exit_code = code;
      pool.Retire(std::move(worker));
      return outcome;
    }
    if (Clock::now() >= deadline) outcome.timed_out = true;
  }
  // Timed out, cancelled, or it died without reporting: the exit status tells.
  const int status = KillAndReap(worker);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (WIFSIGNALED(status) && !outcome.timed_out && !outcome.cancelled) {
    outcome.err += "instar: the worker died with signal " + std::to_string(WTERMSIG(status)) + "\n";
  }
  return outcome;
}

}  // namespace instar::vmm::daemon
