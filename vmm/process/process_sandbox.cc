#include "vmm/process/process_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "abi/memory_map.h"
#include "abi/transport.h"
#include "vmm/base/mapping.h"
#include "vmm/launcher/guest_fault.h"
#include "vmm/process/loader/loader_image.h"
#include "vmm/runtime/runtime_process_image.h"

namespace instar::vmm {
namespace {

using Clock = std::chrono::steady_clock;

Status Errno(const std::string& what) {
  return Status(StatusCode::kUnavailable, what + ": " + std::strerror(errno));
}

// Reads exactly `size` bytes; false on end of file or error.
bool ReadFull(int fd, void* buffer, size_t size) {
  auto* p = static_cast<uint8_t*>(buffer);
  while (size > 0) {
    const ssize_t n = ::read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The guest process: killed and reaped when this goes out of scope.
class GuestProcess {
 public:
  explicit GuestProcess(pid_t pid) : pid_(pid) {}
  GuestProcess(const GuestProcess&) = delete;
  GuestProcess& operator=(const GuestProcess&) = delete;
  ~GuestProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Reap();
    }
  }

  // Waits for the process to end and describes how it did.
  std::string Reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFSIGNALED(status)) {
      if (WTERMSIG(status) == SIGSYS) return "guest made a forbidden system call and was killed";
      return "guest was killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "guest process exited with status " + std::to_string(WEXITSTATUS(status)) +
           " before completing";
  }

 private:
  pid_t pid_;
};

class ProcessMachine : public Machine {
 public:
  ProcessMachine(int loader, UniqueFd ram_fd, Mapping ram)
      : loader_(loader), ram_fd_(std::move(ram_fd)), ram_(std::move(ram)) {}

  GuestRam ram() const override { return {ram_.data(), ram_.size()}; }

  Status Run(uint64_t /*entry: the loader reads it from the verified runtime header*/,
             RequestServer& server, const VmLimits& limits, Clock::time_point start,
             LaunchTimings& timings, SyscallFilter serving) override {
    int doorbell[2], reply[2];
    if (::pipe2(doorbell, O_CLOEXEC) != 0) return Errno("pipe2");
    UniqueFd doorbell_read(doorbell[0]), doorbell_write(doorbell[1]);
    if (::pipe2(reply, O_CLOEXEC) != 0) return Errno("pipe2");
    UniqueFd reply_read(reply[0]), reply_write(reply[1]);

    const pid_t pid = ::fork();
    if (pid < 0) return Errno("fork");
    if (pid == 0) {
      ExecLoader(ram_fd_.get(), doorbell_write.get(), reply_read.get());  // never returns
    }
    GuestProcess guest(pid);
    doorbell_write.Reset();
    reply_read.Reset();
    // From here on: the two pipe ends, and killing and reaping this guest.
    using F = SyscallFilter;
    const auto doorbell_fd = static_cast<uint32_t>(doorbell_read.get());
    const auto reply_fd = static_cast<uint32_t>(reply_write.get());
    serving.Allow(SYS_poll, {F::OneOf(1, {1})});
    serving.Allow(SYS_read, {F::OneOf(0, {doorbell_fd})});
    serving.Allow(SYS_write, {F::OneOf(0, {reply_fd})});
    serving.Allow(SYS_close, {F::OneOf(0, {doorbell_fd, reply_fd})});
    serving.Allow(SYS_kill, {F::OneOf(0, {static_cast<uint32_t>(pid)}), F::OneOf(1, {SIGKILL})});
    serving.Allow(SYS_wait4, {F::OneOf(0, {static_cast<uint32_t>(pid)})});
    INSTAR_RETURN_IF_ERROR(serving.InstallOnThisThread());

    const auto deadline = Clock::now() + limits.deadline;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{doorbell_read.get(), POLLIN, 0};
      const int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        return GuestFailed("guest ran past its deadline of " +
                           std::to_string(limits.deadline.count()) + " ms and was stopped");
      }
      uint64_t word = 0;
      if (!ReadFull(doorbell_read.get(), &word, sizeof word)) return GuestFailed(guest.Reap());
      if (word == abi::kProcessFaultWord) {
        uint64_t frame[8] = {};
        if (!ReadFull(doorbell_read.get(), frame, sizeof frame)) return GuestFailed(guest.Reap());
        return GuestFailed(DescribeFault({true, frame[0], frame[1], frame[2], frame[3]}));
      }
      if (++timings.exits == 1) {
        timings.first_exit_us =
            std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      }
      if (timings.exits > limits.max_exits) {
        return GuestFailed("guest exceeded its budget of " + std::to_string(limits.max_exits) +
                           " exits and was stopped");
      }
      if (server.Serve() == RequestServer::Next::kStop) return Status::Ok();
      const uint64_t done = 1;
      if (::write(reply_write.get(), &done, sizeof done) != sizeof done) {
        return GuestFailed(guest.Reap());
      }
    }
  }

 private:
  // In the child: put the three descriptors where the loader expects them (moved out of the
  // way first, since any of them may already sit on 3..5), stdio on /dev/null, then execute
  // the loader from its memfd with no arguments or environment. Only async-signal-safe calls:
  // the parent may be multi-threaded.
  [[noreturn]] void ExecLoader(int ram, int doorbell, int reply) const {
    const int high_ram = ::fcntl(ram, F_DUPFD, 100);
    const int high_doorbell = ::fcntl(doorbell, F_DUPFD, 100);
    const int high_reply = ::fcntl(reply, F_DUPFD, 100);
    // Close-on-exec: the loader's own descriptor must not survive into the guest.
    const int high_loader = ::fcntl(loader_, F_DUPFD_CLOEXEC, 100);
    const int null = ::open("/dev/null", O_RDWR);
    if (high_ram < 0 || high_doorbell < 0 || high_reply < 0 || high_loader < 0 || null < 0 ||
        ::dup2(null, 0) < 0 || ::dup2(null, 1) < 0 || ::dup2(null, 2) < 0 ||
        ::dup2(high_ram, abi::kProcessRamFd) < 0 ||
        ::dup2(high_doorbell, abi::kProcessDoorbellFd) < 0 ||
        ::dup2(high_reply, abi::kProcessReplyFd) < 0) {
      ::_exit(126);
    }
    char name[] = "instar-guest";
    char* argv[] = {name, nullptr};
    char* envp[] = {nullptr};
    ::fexecve(high_loader, argv, envp);
    ::_exit(127);
  }

  int loader_;
  UniqueFd ram_fd_;
  Mapping ram_;
};

}  // namespace

StatusOr<std::unique_ptr<Sandbox>> ProcessSandbox::Open() {
  const EmbeddedImage& loader = images::loader;
  if (Sha256(loader.bytes, loader.size) != loader.sha256) {
    return Internal("process loader: content hash differs from the one recorded at build time");
  }
  UniqueFd fd(::memfd_create("instar-loader", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return Errno("memfd_create");
  if (::write(fd.get(), loader.bytes, loader.size) != static_cast<ssize_t>(loader.size)) {
    return Errno("writing the process loader");
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return Errno("sealing the process loader");
  }
  // A file with a writable descriptor open cannot be executed (ETXTBSY): keep a read-only one.
  const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  UniqueFd read_only(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!read_only.valid()) return Errno("reopening the process loader");
  return std::unique_ptr<Sandbox>(std::make_unique<ProcessSandbox>(std::move(read_only)));
}

const EmbeddedImage& ProcessSandbox::runtime() const { return images::runtime_process; }

StatusOr<std::unique_ptr<Machine>> ProcessSandbox::NewMachine() const {
  UniqueFd ram_fd(::memfd_create("instar-guest-ram", MFD_CLOEXEC));
  if (!ram_fd.valid()) return Errno("memfd_create");
  if (::ftruncate(ram_fd.get(), static_cast<off_t>(abi::kGuestRamSize)) != 0) {
    return Errno("ftruncate guest RAM");
  }
  void* p = ::mmap(nullptr, abi::kGuestRamSize, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd.get(), 0);
  if (p == MAP_FAILED) return Errno("mmap guest RAM");
  return std::unique_ptr<Machine>(std::make_unique<ProcessMachine>(
      loader_.get(), std::move(ram_fd), Mapping(p, abi::kGuestRamSize)));
}

}  // namespace instar::vmm
