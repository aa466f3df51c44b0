// One harness for every crash-consistency sweep (resize, check -r, rebase, commit): the
// operation runs again and again on fresh copies of its files, the N-th time with every write
// after the first N refused by the host (ServerHooks::fail_writes_after), as a crash would
// drop them, for N = 0, 1, 2, ... until a run completes. After every run the caller's
// verification asserts on the files (gtest). Prints one line per sweep, "crash sweep NAME: P
// interruption points, F failed", which tools/crash_sweep_report.sh collects. Host-only, tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace instar::testing {

struct CrashSweep {
  std::string name;
  // Puts fresh copies of every file the operation touches in place.
  std::function<void()> restore;
  // Runs the operation with every write after the first `writes` refused; returns true when
  // it completed (no write was refused), which ends the sweep.
  std::function<bool(uint64_t writes)> run;
  // Asserts on the files after the run that stopped after `writes` writes (`completed`: the
  // run that finished).
  std::function<void(uint64_t writes, bool completed)> verify;
  uint64_t max_points = 10000;
};

// Runs the sweep; returns the number of interruption points tried (the completed run
// included). A sweep that never completes is a test failure.
uint64_t RunCrashSweep(const CrashSweep& sweep);

// Helpers the verifications share.
// Runs `command` through the shell with its output discarded; its exit code (-1 if killed).
int Shell(const std::string& command);
// `qemu-img check` of `path` (format probed unless given): its exit code; 0 is clean, 3 is
// leaks only.
int QemuCheck(const std::string& path, const std::string& format = "");
// `qemu-img compare` of the guest content of two images (formats probed unless given).
bool SameGuestContent(const std::string& a, const std::string& b, const std::string& format_a = "",
                      const std::string& format_b = "");
// Byte-for-byte equality of two files.
bool SameBytes(const std::string& a, const std::string& b);
// A fresh directory under $TEST_TMPDIR (or /tmp) named `name`.
std::string FreshTestDir(const std::string& name);

}  // namespace instar::testing
