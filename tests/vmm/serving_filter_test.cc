// The thread that serves a guest runs under the seccomp filter of vmm/launcher/serving_filter
// in both sandboxes: a system call outside the list, made from inside the run (here from the
// debug-text hook, which runs on that thread), kills the process, and so does an allowed call
// on a descriptor the run does not own. Each case runs in a child process.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include "abi/info.h"
#include "gtest/gtest.h"
#include "tests/guests/bad_requests_image.h"
#include "tests/lib/both_sandboxes.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/launcher/sandbox_factory.h"

namespace instar::vmm {
namespace {

class ServingFilterTest : public ::testing::TestWithParam<SandboxChoice> {
 protected:
  void SetUp() override {
    char path[] = "/tmp/serving_filter_test.XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    path_ = path;
    ASSERT_EQ(write(fd, "device", 6), 6);
    close(fd);
  }
  void TearDown() override { unlink(path_.c_str()); }

  // Runs the bad_requests guest (it prints a line per case) in a child, calling `on_text` from
  // the debug-text hook; returns the child's wait status. The child exits 0 when the run
  // succeeded and the hook ran.
  int RunInChild(const std::function<void()>& on_text) {
    const pid_t pid = fork();
    if (pid == 0) {
      auto sandbox = OpenSandbox(GetParam(), nullptr);
      if (!sandbox.ok()) _exit(10);
      DeviceSet devices;
      Device d;
      d.fd.Reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
      d.limits = {6, 512, false, 0};
      devices.inputs.push_back(std::move(d));
      abi::InfoConfig config{};
      config.magic = abi::kInfoConfigMagic;
      OperationLaunch launch;
      launch.operation = &images::bad_requests;
      launch.SetConfig(config);
      launch.expected_result = {abi::kInfoResultMagic, sizeof(abi::InfoResult)};
      bool hook_ran = false;
      launch.hooks.on_debug_text = [&](std::string_view) {
        hook_ran = true;
        on_text();
      };
      const auto outcome = RunOperation(**sandbox, devices, launch);
      _exit(outcome.ok() && hook_ran ? 0 : 11);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }

  std::string path_;
};

bool KilledBySeccomp(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }

TEST_P(ServingFilterTest, AllowedCallsServeTheGuest) {
  const int status = RunInChild([] {
    // Memory, stderr, the clock: what hooks and the server use.
    std::string grow(1 << 20, 'x');
    (void)!write(STDERR_FILENO, "", 0);
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_P(ServingFilterTest, ForbiddenCallsKillTheProcess) {
  EXPECT_TRUE(KilledBySeccomp(RunInChild([] { syscall(SYS_getppid); })));
  EXPECT_TRUE(KilledBySeccomp(RunInChild([] { ::open("/etc/passwd", O_RDONLY); })));
  EXPECT_TRUE(KilledBySeccomp(RunInChild([] { ::fork(); })));
}

TEST_P(ServingFilterTest, AllowedCallsOnForeignDescriptorsKillTheProcess) {
  const int foreign = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(foreign, 0);
  char buf[4];
  EXPECT_TRUE(KilledBySeccomp(RunInChild([&] { (void)!pread(foreign, buf, sizeof buf, 0); })));
  EXPECT_TRUE(KilledBySeccomp(RunInChild([&] { (void)!write(foreign, buf, sizeof buf); })));
  close(foreign);
}

INSTANTIATE_TEST_SUITE_P(BothSandboxes, ServingFilterTest, SandboxBackends(),
                         SandboxTestName);

}  // namespace
}  // namespace instar::vmm
