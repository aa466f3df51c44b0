// Crash consistency of `instar rebase` (safe mode): the operation is interrupted after every
// single write it makes (the request server fails every write after the first N), for
// N = 0, 1, 2, ... until it completes, in each sandbox. After each interruption the overlay
// must be `qemu-img check` clean (leaks allowed) and read exactly what it read before
// (`qemu-img compare` against the untouched original, whichever backing file its header names
// by then).
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "vmm/launcher/sandbox_factory.h"
#include "vmm/operations/rebase_request.h"

namespace instar::vmm {
namespace {

namespace fs = std::filesystem;

int Shell(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class RebaseCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / "rebase_crash";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  void Run(const std::string& command) {
    ASSERT_EQ(Shell("cd " + dir_.string() + " && " + command), 0) << command;
  }

  // Interrupts `instar rebase -b BACKING -F FORMAT OVERLAY` after each write in turn, in every
  // sandbox that opens; returns how many writes the whole operation made.
  uint64_t Sweep(const std::string& overlay, const std::string& backing,
                 const std::string& backing_format) {
    uint64_t total = 0;
    for (const SandboxChoice choice : {SandboxChoice::kKvm, SandboxChoice::kProcess}) {
      auto sandbox = OpenSandbox(choice, nullptr);
      if (!sandbox.ok()) continue;
      const std::string original = Path(overlay + ".orig");
      fs::copy_file(Path(overlay), original, fs::copy_options::overwrite_existing);
      const std::string image = Path(overlay);
      bool completed = false;
      for (uint64_t writes = 0; writes < 10000 && !completed; ++writes) {
        fs::copy_file(original, image, fs::copy_options::overwrite_existing);
        RebaseRequest request;
        request.path = image;
        request.backing = backing;
        if (!backing.empty()) request.backing_format = backing_format;
        request.hooks.fail_writes_after = writes;
        auto outcome = RunRebase(**sandbox, request);
        EXPECT_TRUE(outcome.ok()) << outcome.status().message();
        if (!outcome.ok()) return 0;
        if (overlay.ends_with(".qcow2")) {
          const int check = Shell("qemu-img check " + image);
          EXPECT_TRUE(check == 0 || check == 3) << "after " << writes << " writes: check " << check;
        }
        EXPECT_EQ(Shell("qemu-img compare -q " + original + " " + image), 0)
            << "guest content changed after " << writes << " writes";
        if (!outcome->error) {
          completed = true;
          total = writes;
          if (overlay.ends_with(".qcow2")) {
            EXPECT_EQ(Shell("qemu-img check " + image), 0);
          }
          break;
        }
        EXPECT_EQ(*outcome->error, abi::RebaseError::kWriteFailed)
            << "after " << writes << " writes: error " << static_cast<uint32_t>(*outcome->error);
      }
      EXPECT_TRUE(completed) << "the operation never completed";
      fs::copy_file(original, image, fs::copy_options::overwrite_existing);
    }
    return total;
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
