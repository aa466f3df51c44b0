// Each case installs a filter in a child process and checks that allowed calls work and that
// anything else, or an allowed call with an argument outside its list, kills the process.
#include "vmm/base/syscall_filter.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

using F = SyscallFilter;

// Runs `body` in a child after installing `filter`; returns the wait status.
int InChild(const SyscallFilter& filter, const std::function<void()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!filter.InstallOnThisThread().ok()) _exit(100);
    body();
    syscall(SYS_exit_group, 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool KilledBySeccomp(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }
bool ExitedCleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

SyscallFilter Minimal() {
  SyscallFilter f;
  f.Allow(SYS_exit_group);
  return f;
}

TEST(SyscallFilter, AllowedCallsRunAndOthersKill) {
  EXPECT_TRUE(ExitedCleanly(InChild(Minimal(), [] {})));
  EXPECT_TRUE(KilledBySeccomp(InChild(Minimal(), [] { syscall(SYS_getppid); })));
  SyscallFilter f = Minimal();
  f.Allow(SYS_getppid);
  EXPECT_TRUE(ExitedCleanly(InChild(f, [] { syscall(SYS_getppid); })));
}

TEST(SyscallFilter, ArgumentListsAreEnforced) {
  const int fd = open("/dev/zero", O_RDONLY);
  ASSERT_GE(fd, 0);
  const int other = dup(fd);
  SyscallFilter f = Minimal();
  f.Allow(SYS_pread64, {F::OneOf(0, {99, static_cast<uint32_t>(fd)})});
  char buf[8];
  EXPECT_TRUE(ExitedCleanly(InChild(f, [&] {
    if (pread(fd, buf, sizeof buf, 0) != sizeof buf) _exit(1);
  })));
  EXPECT_TRUE(KilledBySeccomp(InChild(f, [&] { (void)!pread(other, buf, sizeof buf, 0); })));
  // Two tests on one call: both must hold.
  SyscallFilter g = Minimal();
  g.Allow(SYS_kill, {F::OneOf(0, {static_cast<uint32_t>(getpid())}), F::OneOf(1, {0})});
  const pid_t parent = getpid();
  EXPECT_TRUE(ExitedCleanly(InChild(g, [&] { kill(parent, 0); })));
  EXPECT_TRUE(KilledBySeccomp(InChild(g, [&] { kill(parent, SIGCONT); })));
  EXPECT_TRUE(KilledBySeccomp(InChild(g, [&] { kill(1, 0); })));
  close(fd);
  close(other);
}

TEST(SyscallFilter, BitsClearRefusesTheNamedBits) {
  SyscallFilter f = Minimal();
  f.Allow(SYS_mmap, {F::BitsClear(2, PROT_EXEC)});
  EXPECT_TRUE(ExitedCleanly(InChild(f, [] {
    if (mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
        MAP_FAILED) {
      _exit(1);
    }
  })));
  EXPECT_TRUE(KilledBySeccomp(InChild(f, [] {
    mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  })));
}

TEST(SyscallFilter, OnlyTheInstallingThreadIsConfined) {
  SyscallFilter thread_end = Minimal();
  // glibc's thread exit; ASan drops its signal stack and clears the stack's shadow.
  for (int nr : {SYS_exit, SYS_futex, SYS_madvise, SYS_mmap, SYS_munmap, SYS_rt_sigprocmask,
                 SYS_sigaltstack}) {
    thread_end.Allow(nr);
  }
  EXPECT_TRUE(ExitedCleanly(InChild(Minimal(), [&] {})));
  const pid_t pid = fork();
  if (pid == 0) {
    std::thread confined([&] {
      if (!thread_end.InstallOnThisThread().ok()) _exit(100);
    });
    confined.join();
    // This thread installed nothing: it may still open files.
    const int fd = open("/dev/null", O_RDONLY);
    _exit(fd >= 0 && syscall(SYS_getppid) > 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(ExitedCleanly(status));
}

TEST(SyscallFilter, LargeListsCompileWithinBpfJumpRange) {
  std::vector<uint32_t> many;
  for (uint32_t i = 0; i < 64; ++i) many.push_back(i);
  SyscallFilter f = Minimal();
  for (int i = 0; i < 20; ++i) f.Allow(SYS_pread64, {F::OneOf(0, many), F::OneOf(3, many)});
  EXPECT_LT(f.Compile().size(), 4096u);
  EXPECT_TRUE(ExitedCleanly(InChild(f, [] {})));
}

}  // namespace
}  // namespace instar::vmm
