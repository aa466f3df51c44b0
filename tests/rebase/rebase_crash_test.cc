// Crash consistency of `instar rebase` (safe mode): the operation is interrupted after every
// single write it makes (the request server fails every write after the first N), for
// N = 0, 1, 2, ... until it completes, in each sandbox. After each interruption the overlay
// must be `qemu-img check` clean (leaks allowed) and read exactly what it read before
// (`qemu-img compare` against the untouched original, whichever backing file its header names
// by then).
#include <filesystem>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "tests/lib/crash_sweep.h"
#include "vmm/launcher/sandbox_factory.h"
#include "vmm/operations/rebase_request.h"

namespace instar::vmm {
namespace {

namespace fs = std::filesystem;
using testing::Shell;

class RebaseCrashTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshTestDir("rebase_crash"); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  void Run(const std::string& command) {
    ASSERT_EQ(Shell("cd " + dir_.string() + " && " + command), 0) << command;
  }

  // Interrupts `instar rebase -b BACKING -F FORMAT OVERLAY` after each write in turn, in every
  // sandbox that opens; returns the interruption points of the last sweep.
  uint64_t Sweep(const std::string& overlay, const std::string& backing,
                 const std::string& backing_format) {
    const std::string image = Path(overlay);
    const std::string original = image + ".orig";
    fs::copy_file(image, original, fs::copy_options::overwrite_existing);
    const bool qcow2 = overlay.ends_with(".qcow2");
    uint64_t points = 0;
    for (const SandboxChoice choice : {SandboxChoice::kKvm, SandboxChoice::kProcess}) {
      auto sandbox = OpenSandbox(choice, nullptr);
      if (!sandbox.ok()) continue;
      RebaseRequest request;
      request.path = image;
      request.backing = backing;
      if (!backing.empty()) request.backing_format = backing_format;
      std::optional<abi::RebaseError> error;
      testing::CrashSweep sweep;
      sweep.name = std::string("rebase ") + (choice == SandboxChoice::kKvm ? "kvm " : "process ") +
                   overlay + " -b '" + backing + "'";
      sweep.restore = [&] { fs::copy_file(original, image, fs::copy_options::overwrite_existing); };
      sweep.run = [&](uint64_t writes) {
        request.hooks.fail_writes_after = writes;
        auto outcome = RunRebase(**sandbox, request);
        EXPECT_TRUE(outcome.ok()) << outcome.status().message();
        error = outcome.ok() ? outcome->error : std::optional(abi::RebaseError::kIoError);
        return outcome.ok() && !outcome->error;
      };
      sweep.verify = [&](uint64_t, bool completed) {
        if (qcow2) {
          const int check = testing::QemuCheck(image);
          EXPECT_TRUE(check == 0 || check == 3) << "check " << check;
          if (completed) {
            EXPECT_EQ(check, 0);
          }
        }
        // Whichever backing file the header names by now, the guest reads what it read.
        EXPECT_TRUE(testing::SameGuestContent(original, image));
        if (!completed) {
          EXPECT_EQ(error, abi::RebaseError::kWriteFailed)
              << "error " << static_cast<uint32_t>(error.value_or(abi::RebaseError::kOk));
        }
      };
      points = testing::RunCrashSweep(sweep);
      fs::copy_file(original, image, fs::copy_options::overwrite_existing);
    }
    return points;
  }

  fs::path dir_;
};

TEST_F(RebaseCrashTest, Qcow2OntoAnUnrelatedBackingFile) {
  Run("qemu-img create -q -f qcow2 base.qcow2 4M");
  Run("qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 3M 1M' base.qcow2");
  Run("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 4M");
  Run("qemu-io -c 'write -P 3 512k 64k' ov.qcow2");
  Run("qemu-img create -q -f qcow2 new.qcow2 4M");
  Run("qemu-io -c 'write -P 4 2M 2M' new.qcow2");
  EXPECT_GT(Sweep("ov.qcow2", "new.qcow2", "qcow2"), 3u);
}

TEST_F(RebaseCrashTest, SmallClustersNarrowRefcountsAndASnapshot) {
  Run("qemu-img create -q -f qcow2 base.qcow2 1M");
  Run("qemu-io -c 'write -P 5 0 1M' base.qcow2");
  Run("qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=2 -b base.qcow2 -F qcow2 "
      "ov.qcow2 1M");
  Run("qemu-io -c 'write -P 6 0 64k' ov.qcow2");
  Run("qemu-img snapshot -c s1 ov.qcow2");
  Run("qemu-io -c 'write -P 7 32k 8k' ov.qcow2");
  EXPECT_GT(Sweep("ov.qcow2", "", ""), 3u);
}

TEST_F(RebaseCrashTest, Version2DetachedFromASmallerBackingFile) {
  Run("qemu-img create -q -f qcow2 base.qcow2 2M");
  Run("qemu-io -c 'write -P 8 1M 1M' base.qcow2");
  Run("qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 -b base.qcow2 -F qcow2 "
      "ov.qcow2 4M");
  EXPECT_GT(Sweep("ov.qcow2", "", ""), 2u);
}

TEST_F(RebaseCrashTest, VmdkOverlay) {
  Run("qemu-img create -q -f vmdk base.vmdk 4M");
  Run("qemu-io -c 'write -P 9 0 2M' base.vmdk");
  Run("qemu-img create -q -f vmdk -b base.vmdk -F vmdk ov.vmdk 4M");
  Run("qemu-io -c 'write -P 10 1M 64k' ov.vmdk");
  Run("qemu-img create -q -f vmdk new.vmdk 4M");
  EXPECT_GT(Sweep("ov.vmdk", "new.vmdk", "vmdk"), 2u);
}

}  // namespace
}  // namespace instar::vmm
