#include "tests/lib/crash_sweep.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"

namespace instar::testing {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Failed assertions recorded so far in the running test.
int FailedParts() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return 0;
  const ::testing::TestResult* result = info->result();
  int failed = 0;
  for (int i = 0; i < result->total_part_count(); ++i) {
    if (result->GetTestPartResult(i).failed()) ++failed;
  }
  return failed;
}

}  // namespace

uint64_t RunCrashSweep(const CrashSweep& sweep) {
  uint64_t points = 0, failed_points = 0;
  bool completed = false;
  for (uint64_t writes = 0; writes < sweep.max_points && !completed; ++writes) {
    SCOPED_TRACE(sweep.name + ": interrupted after " + std::to_string(writes) + " writes");
    sweep.restore();
    const int failures_before = FailedParts();
    completed = sweep.run(writes);
    sweep.verify(writes, completed);
    ++points;
    if (FailedParts() != failures_before) ++failed_points;
  }
  EXPECT_TRUE(completed) << sweep.name << ": the operation never completed";
  std::printf("crash sweep %s: %llu interruption points, %llu failed\n", sweep.name.c_str(),
              static_cast<unsigned long long>(points),
              static_cast<unsigned long long>(failed_points));
  std::fflush(stdout);
  return points;
}

int Shell(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int QemuCheck(const std::string& path, const std::string& format) {
  return Shell("qemu-img check " + (format.empty() ? "" : "-f " + format + " ") + Quote(path));
}

bool SameGuestContent(const std::string& a, const std::string& b, const std::string& format_a,
                      const std::string& format_b) {
  std::string command = "qemu-img compare -q ";
  if (!format_a.empty()) command += "-f " + format_a + " ";
  if (!format_b.empty()) command += "-F " + format_b + " ";
  return Shell(command + Quote(a) + " " + Quote(b)) == 0;
}

bool SameBytes(const std::string& a, const std::string& b) {
  return Shell("cmp -s " + Quote(a) + " " + Quote(b)) == 0;
}

std::string FreshTestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace instar::testing
