// Crash consistency of `instar commit`: the operation is interrupted after every single write
// it makes (the request server fails every write after the first N), for N = 0, 1, 2, ...
// until it completes, in each sandbox. After each interruption `qemu-img check` must find no
// corruption in the base or the top (leaks are allowed), every guest cluster of the base must
// read either its old content or what qemu-img's own commit of the same chain put there, and
// the top must read exactly what it read before (the base only ever gains what the top
// already showed). The completed run must match qemu-img's result.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/lib/both_sandboxes.h"
#include "tests/lib/crash_sweep.h"
#include "vmm/launcher/sandbox_factory.h"
#include "vmm/operations/commit_request.h"

namespace instar::vmm {
namespace {

namespace fs = std::filesystem;

using testing::Shell;

std::vector<char> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Sweepable {
  std::vector<std::string> files;  // the chain's files, top first; all live in one directory
  size_t base = 1;                 // index of the base in `files`
  std::string qemu_args;           // qemu-img commit's flags for the same commit
};

class CommitCrashTest : public ::testing::TestWithParam<SandboxChoice> {
 protected:
  void SetUp() override {
    root_ = testing::FreshTestDir("commit_crash");
    for (const char* d : {"src", "expected", "run", "views"}) fs::create_directories(root_ / d);
    std::string notice;
    auto sandbox = OpenSandbox(GetParam(), &notice);
    if (!sandbox.ok() && GetParam() == SandboxChoice::kKvm) {
      GTEST_SKIP() << sandbox.status().message();
    }
    ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
    sandbox_ = std::move(*sandbox);
  }

  std::string In(const char* dir, const std::string& name) const {
    return (root_ / dir / name).string();
  }

  void CopyChain(const Sweepable& s, const char* dir) {
    for (const std::string& f : s.files) {
      fs::copy_file(In("src", f), In(dir, f), fs::copy_options::overwrite_existing);
    }
  }

  // The guest view of `image` (with its backing chain) as a raw file.
  std::vector<char> View(const std::string& image, const std::string& name) {
    const std::string raw = In("views", name);
    EXPECT_EQ(Shell("qemu-img convert -U -O raw " + image + " " + raw), 0) << image;
    return Slurp(raw);
  }

  // Interrupts `instar commit` after each write in turn; returns how many interruption points
  // the whole operation had.
  uint64_t Sweep(const std::string& name, const Sweepable& s, CommitRequest request) {
    const std::string& top = s.files.front();
    const std::string& base = s.files[s.base];
    CopyChain(s, "expected");
    EXPECT_EQ(Shell("qemu-img commit -q " + s.qemu_args + " " + In("expected", top)), 0);
    std::vector<char> old_base = View(In("src", base), "old_base");
    const std::vector<char> new_base = View(In("expected", base), "new_base");
    // A base grown (before any data reaches it) reads zeros past its old end: qemu zero-fills
    // the new range when the base's backing file is longer, else that file is too short to
    // show there.
    if (old_base.size() < new_base.size()) old_base.resize(new_base.size(), 0);
    const std::vector<char> old_top = View(In("src", top), "old_top");
    request.path = In("run", top);
    std::optional<abi::CommitError> error;
    testing::CrashSweep sweep;
    sweep.name = "commit " + name + (GetParam() == SandboxChoice::kKvm ? " (kvm)" : " (process)");
    sweep.restore = [&] { CopyChain(s, "run"); };
    sweep.run = [&](uint64_t writes) {
      request.hooks.fail_writes_after = writes;
      auto outcome = RunCommit(*sandbox_, request);
      EXPECT_TRUE(outcome.ok()) << outcome.status().message();
      error = outcome.ok() ? outcome->error : std::optional(abi::CommitError::kIoError);
      return outcome.ok() && !outcome->error;
    };
    sweep.verify = [&](uint64_t, bool completed) {
      for (const std::string& f : s.files) {
        if (f.size() > 6 && f.substr(f.size() - 6) == ".qcow2") {
          const int check = testing::QemuCheck(In("run", f));
          EXPECT_TRUE(check == 0 || check == 3) << f << ": check " << check;
        }
      }
      const std::vector<char> base_now = View(In("run", base), "base_now");
      // Each 512-byte unit of the base reads old or new; a base not yet grown is shorter.
      EXPECT_LE(base_now.size(), new_base.size());
      constexpr size_t kUnit = 512;
      for (size_t at = 0; at + kUnit <= base_now.size(); at += kUnit) {
        const auto same = [&](const std::vector<char>& v) {
          return at + kUnit <= v.size() &&
                 std::equal(base_now.begin() + at, base_now.begin() + at + kUnit, v.begin() + at);
        };
        if (!same(old_base) && !same(new_base)) {
          ADD_FAILURE() << "base offset " << at << " reads neither its old nor its committed "
                        << "content";
          break;
        }
      }
      EXPECT_EQ(View(In("run", top), "top_now"), old_top) << "the top's content changed";
      if (completed) {
        EXPECT_EQ(base_now, new_base);
        EXPECT_TRUE(testing::SameGuestContent(In("expected", top), In("run", top)));
        return;
      }
      EXPECT_EQ(error, abi::CommitError::kIoError)
          << "error " << static_cast<uint32_t>(error.value_or(abi::CommitError::kOk));
    };
    return testing::RunCrashSweep(sweep);
  }

  void Create(const std::string& name, const std::string& options, const std::string& size,
              const std::string& writes, const std::string& format = "qcow2") {
    ASSERT_EQ(Shell("cd " + (root_ / "src").string() + " && qemu-img create -q -f " + format +
                    (options.empty() ? "" : " -o " + options) + " " + name + " " + size),
              0);
    if (!writes.empty()) {
      ASSERT_EQ(Shell("qemu-io -f " + format + " " + writes + " " + In("src", name)), 0);
    }
  }

  fs::path root_;
  std::unique_ptr<Sandbox> sandbox_;
};

TEST_P(CommitCrashTest, Qcow2IntoQcow2ThenEmptyTheTop) {
  Create("base.qcow2", "cluster_size=65536", "4M", "-c 'write -P 1 0 4M'");
  Create("top.qcow2", "cluster_size=65536,backing_file=base.qcow2,backing_fmt=qcow2", "4M",
         "-c 'write -P 2 0 128k' -c 'write -z 1M 64k' -c 'write -P 3 3968k 128k'");
  CommitRequest request;
  EXPECT_GT(Sweep("qcow2 into qcow2, top emptied", {{"top.qcow2", "base.qcow2"}, 1, ""}, request), 4u);
}

TEST_P(CommitCrashTest, SmallClustersIntoASnapshottedBaseWithTwoBitRefcounts) {
  Create("base.qcow2", "cluster_size=65536,refcount_bits=2", "2M", "-c 'write -P 1 0 2M'");
  ASSERT_EQ(Shell("qemu-img snapshot -c s1 " + In("src", "base.qcow2")), 0);
  Create("top.qcow2", "cluster_size=4096,backing_file=base.qcow2,backing_fmt=qcow2", "2M",
         "-c 'write -P 2 4k 4k' -c 'write -P 3 1020k 8k' -c 'write -z 1536k 64k'");
  CommitRequest request;
  EXPECT_GT(Sweep("4k clusters into a snapshotted 64k base", {{"top.qcow2", "base.qcow2"}, 1, ""},
                  request),
            4u);
}

TEST_P(CommitCrashTest, GrowsASmallerBaseOverItsLongerBacking) {
  Create("root.qcow2", "cluster_size=65536", "4M", "-c 'write -P 7 0 4M'");
  Create("base.qcow2", "cluster_size=65536,backing_file=root.qcow2,backing_fmt=qcow2", "1M",
         "-c 'write -P 1 0 64k'");
  Create("top.qcow2", "cluster_size=65536,backing_file=base.qcow2,backing_fmt=qcow2", "3M",
         "-c 'write -P 2 2M 64k'");
  CommitRequest request;
  EXPECT_GT(Sweep("grown base over its longer backing", {{"top.qcow2", "base.qcow2", "root.qcow2"}, 1, ""},
                  request),
            3u);
}

TEST_P(CommitCrashTest, ThroughAnIntermediateIntoAVmdkBase) {
  Create("base.vmdk", "", "2M", "-c 'write -P 1 0 1M'", "vmdk");
  Create("mid.qcow2", "backing_file=base.vmdk,backing_fmt=vmdk", "2M", "-c 'write -P 2 512k 1M'");
  Create("top.qcow2", "backing_file=mid.qcow2,backing_fmt=qcow2", "2M",
         "-c 'write -P 3 0 64k' -c 'write -z 1M 64k'");
  CommitRequest request;
  request.base = "base.vmdk";
  EXPECT_GT(Sweep("-b through an intermediate into vmdk", {{"top.qcow2", "mid.qcow2", "base.vmdk"}, 2, "-b base.vmdk"},
                  request),
            3u);
}

TEST_P(CommitCrashTest, ScatteredDataIntoTinyClustersThatNeedNewTablesAndRefcountBlocks) {
  Create("base.qcow2", "cluster_size=512,refcount_bits=16", "8M", "-c 'write -P 1 0 64k'");
  std::string writes;
  for (int i = 0; i < 24; ++i) {
    writes += " -c 'write -P " + std::to_string(i + 2) + " " + std::to_string(i * 327680 + 4096) +
              " 8k'";
  }
  Create("top.qcow2", "cluster_size=4096,backing_file=base.qcow2,backing_fmt=qcow2", "8M",
         writes + " -c 'write -z 7M 64k'");
  CommitRequest request;
  EXPECT_GT(Sweep("scattered 4k clusters into 512-byte base clusters",
                  {{"top.qcow2", "base.qcow2"}, 1, ""}, request),
            20u);
}

INSTANTIATE_TEST_SUITE_P(Sandboxes, CommitCrashTest, SandboxBackends(),
                         SandboxTestName);

}  // namespace
}  // namespace instar::vmm
