#include "vmm/daemon/worker_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace instar::vmm::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// How long a worker may take to exit once its request is answered (or, idle, once told to
// go) before it is killed.
constexpr std::chrono::seconds kGrace{5};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

Status Errno(const std::string& what) { return IoError(what + ": " + std::strerror(errno)); }

// In the forked child: the control socket on kWorkerControlFd, the pipes on stdout and stderr,
// the daemon's stderr (its log) on kWorkerControlFd + 1 for what the worker prints after its
// request, stdin on /dev/null, default signal mask; then exec. Async-signal-safe calls only.
[[noreturn]] void ExecWorker(int control, int out, int err) {
  const int high_control = ::fcntl(control, F_DUPFD, 10);
  const int high_out = ::fcntl(out, F_DUPFD, 10);
  const int high_err = ::fcntl(err, F_DUPFD, 10);
  const int high_log = ::fcntl(STDERR_FILENO, F_DUPFD, 10);
  const int null = ::open("/dev/null", O_RDONLY);
  sigset_t none;
  sigemptyset(&none);
  if (high_control < 0 || high_out < 0 || high_err < 0 || high_log < 0 || null < 0 ||
      ::dup2(null, STDIN_FILENO) < 0 || ::dup2(high_out, STDOUT_FILENO) < 0 ||
      ::dup2(high_err, STDERR_FILENO) < 0 || ::dup2(high_control, kWorkerControlFd) < 0 ||
      ::dup2(high_log, kWorkerControlFd + 1) < 0 ||
      ::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) {
    ::_exit(125);
  }
  char name[] = "instard-worker";
  char flag[] = "--worker";
  char* const argv[] = {name, flag, nullptr};
  ::execv("/proc/self/exe", argv);
  ::_exit(127);
}

}  // namespace

StatusOr<WorkerProcess> StartWorker() {
  int control[2], out[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    return Errno("socketpair");
  }
  UniqueFd control_ours(control[0]), control_theirs(control[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return Errno("pipe");
  UniqueFd err_read(err[0]), err_write(err[1]);

  const pid_t pid = ::fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) ExecWorker(control_theirs.get(), out_write.get(), err_write.get());
  WorkerProcess worker;
  worker.pid = pid;
  worker.pidfd.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  worker.control = std::move(control_ours);
  worker.out = std::move(out_read);
  worker.err = std::move(err_read);
  if (!worker.pidfd.valid()) {
    const Status failed = Errno("pidfd_open");
    KillAndReap(worker);
    return failed;
  }
  return worker;
}

int KillAndReap(WorkerProcess& worker) {
  int status = 0;
  if (worker.pid <= 0) return status;
  ::kill(worker.pid, SIGKILL);
  while (::waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
  }
  worker.pid = -1;
  return status;
}

WorkerPool::WorkerPool(uint32_t spares)
    : spares_(spares), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      keeper_([this] { Keep(); }) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  Wake();
  keeper_.join();
}

void WorkerPool::Wake() {
  const uint64_t one = 1;
  // The eventfd saturates only after 2^64 - 2 wake-ups; a failed write means one is pending.
  (void)!::write(wake_.get(), &one, sizeof one);
}

StatusOr<WorkerProcess> WorkerPool::Take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      WorkerProcess worker = std::move(idle_.front());
      idle_.pop_front();
      Wake();
      return worker;
    }
  }
  StatusOr<WorkerProcess> worker = StartWorker();
  if (worker.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_.started;
  }
  return worker;
}

void WorkerPool::Retire(WorkerProcess worker) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    retiring_.push_back({std::move(worker), Clock::now() + kGrace});
    deaths_in_a_row_ = 0;  // workers live long enough to serve
  }
  Wake();
}

void WorkerPool::Discard(WorkerProcess worker) {
  KillAndReap(worker);
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_.died_idle;
}

void WorkerPool::SetSpares(uint32_t spares) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    spares_ = spares;
  }
  Wake();
}

WorkerPool::Counts WorkerPool::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counts c = counts_;
  c.spares = spares_;
  c.idle = static_cast<uint32_t>(idle_.size());
  c.retiring = static_cast<uint32_t>(retiring_.size());
  return c;
}

void WorkerPool::Keep() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ || !idle_.empty() || !retiring_.empty()) KeepOnce(lock);
}

void WorkerPool::KeepOnce(std::unique_lock<std::mutex>& lock) {
  const auto now = Clock::now();
  // Idle workers beyond the spare count (or all of them, when stopping) are told to go: their
  // control socket closes and they exit without having touched anything.
  const size_t keep = stopping_ ? 0 : spares_;
  while (idle_.size() > keep) {
    WorkerProcess worker = std::move(idle_.back());
    idle_.pop_back();
    worker.control.Reset();
    retiring_.push_back({std::move(worker), now + kGrace});
  }
  // Start one replacement per round, outside the lock (a fork), unless backing off.
  if (!stopping_ && idle_.size() < spares_ && now >= restart_at_) {
    lock.unlock();
    StatusOr<WorkerProcess> worker = StartWorker();
    lock.lock();
    if (worker.ok()) {
      ++counts_.started;
      idle_.push_back(std::move(worker).value());
    } else {
      restart_at_ = Clock::now() + kMaxBackoff;
    }
    return;
  }
  // Workers that overstay their grace are killed (and reaped below once their pidfd fires).
  auto wake_at = Clock::time_point::max();
  for (Retiring& r : retiring_) {
    if (now >= r.kill_at) {
      ::kill(r.worker.pid, SIGKILL);
      r.kill_at = Clock::time_point::max();
    }
    wake_at = std::min(wake_at, r.kill_at);
  }
  if (!stopping_ && idle_.size() < spares_) wake_at = std::min(wake_at, restart_at_);

  // Wait for a wake-up, an idle worker's hang-up (it died) or a retiring worker's exit.
  std::vector<pollfd> polled = {{wake_.get(), POLLIN, 0}};
  std::vector<pid_t> pids = {0};
  for (const WorkerProcess& w : idle_) {
    polled.push_back({w.control.get(), POLLRDHUP, 0});
    pids.push_back(w.pid);
  }
  const size_t first_retiring = polled.size();
  for (const Retiring& r : retiring_) {
    polled.push_back({r.worker.pidfd.get(), POLLIN, 0});
    pids.push_back(r.worker.pid);
  }
  int timeout = -1;
  if (wake_at != Clock::time_point::max()) {
    timeout = static_cast<int>(std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now).count() + 1));
  }
  lock.unlock();
  const int ready = ::poll(polled.data(), polled.size(), timeout);
  uint64_t drained;
  (void)!::read(wake_.get(), &drained, sizeof drained);
  lock.lock();
  if (ready <= 0) return;

  // Only workers still where the snapshot saw them are acted on (Take may have run since).
  for (size_t i = 1; i < polled.size(); ++i) {
    if (polled[i].revents == 0) continue;
    if (i < first_retiring) {
      auto it = std::find_if(idle_.begin(), idle_.end(),
                             [&](const WorkerProcess& w) { return w.pid == pids[i]; });
      if (it == idle_.end()) continue;
      char byte;
      const ssize_t n = ::recv(it->control.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;  // alive after all
      // An idle worker never writes: anything but "nothing yet" means it died (or misbehaves).
      WorkerProcess dead = std::move(*it);
      idle_.erase(it);
      ++counts_.died_idle;
      ++deaths_in_a_row_;
      const std::chrono::milliseconds backoff(10 << std::min(deaths_in_a_row_, 7u));
      restart_at_ = Clock::now() + std::min<std::chrono::milliseconds>(kMaxBackoff, backoff);
      retiring_.push_back({std::move(dead), Clock::now()});  // killed and reaped next round
    } else {
      auto it = std::find_if(retiring_.begin(), retiring_.end(),
                             [&](const Retiring& r) { return r.worker.pid == pids[i]; });
      if (it == retiring_.end()) continue;
      int status = 0;
      if (::waitpid(it->worker.pid, &status, WNOHANG) == it->worker.pid) retiring_.erase(it);
    }
  }
}

}  // namespace instar::vmm::daemon
