// Crash consistency of `instar resize`: the operation is interrupted after every single write
// it makes (the request server fails every write after the first N), for N = 0, 1, 2, ...
// until it completes. After each interruption `qemu-img check` must find no corruption (leaks
// are allowed) and the guest-visible content must be the old image's or the new one's
// (`qemu-img compare` against the original and against qemu-img's own resize of it).
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/lib/crash_sweep.h"
#include "vmm/launcher/sandbox_factory.h"
#include "vmm/operations/resize_request.h"

namespace instar::vmm {
namespace {

namespace fs = std::filesystem;
using testing::Shell;

class ResizeCrashTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshTestDir("resize_crash"); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // One run of the operation with every write after the first `writes` refused; true when it
  // completed. `*error` gets the guest's error (an I/O error when the run itself failed).
  static bool RunInterrupted(const Sandbox& sandbox, ResizeRequest& request, uint64_t writes,
                             std::optional<abi::ResizeError>* error) {
    request.hooks.fail_writes_after = writes;
    auto outcome = RunResize(sandbox, request);
    EXPECT_TRUE(outcome.ok()) << outcome.status().message();
    *error = outcome.ok() ? outcome->error : std::optional(abi::ResizeError::kIoError);
    return outcome.ok() && !outcome->error;
  }

  // Interrupts `instar resize` after each write in turn; returns how many interruption points
  // the whole operation had.
  uint64_t Sweep(const std::string& original, const std::string& format, const std::string& size,
                 ResizeRequest request) {
    auto sandbox = OpenSandbox(SandboxChoice::kAuto, nullptr);
    EXPECT_TRUE(sandbox.ok()) << sandbox.status().message();
    if (!sandbox.ok()) return 0;
    const std::string expected = Path("expected");
    fs::copy_file(original, expected, fs::copy_options::overwrite_existing);
    EXPECT_EQ(Shell("qemu-img resize -f " + format + (request.allow_shrink ? " --shrink " : " ") +
                  expected + " " + size),
              0);
    const std::string image = Path("image");
    request.path = image;
    request.format = format == "raw" ? abi::ImageFormat::kRaw : abi::ImageFormat::kQcow2;
    std::optional<abi::ResizeError> error;
    testing::CrashSweep sweep;
    sweep.name = "resize " + fs::path(original).filename().string() + " " + size;
    sweep.restore = [&] { fs::copy_file(original, image, fs::copy_options::overwrite_existing); };
    sweep.run = [&](uint64_t writes) { return RunInterrupted(**sandbox, request, writes, &error); };
    sweep.verify = [&](uint64_t, bool completed) {
      if (format == "qcow2") {
        const int check = testing::QemuCheck(image);
        EXPECT_TRUE(check == 0 || check == 3) << "check " << check;
        if (completed) {
          EXPECT_EQ(check, 0);
        }
      }
      // Without -s: a preallocated zero and a hole are the same content; a larger image's
      // extra area must read as zeros.
      const bool old_content = testing::SameGuestContent(original, image, format, format);
      const bool new_content = testing::SameGuestContent(expected, image, format, format);
      EXPECT_TRUE(old_content || new_content);
      if (completed) {
        EXPECT_TRUE(new_content);
        return;
      }
      // A failed write, or (raw) a failed change of the file size.
      EXPECT_TRUE(error == abi::ResizeError::kIoError || error == abi::ResizeError::kFileTooLarge)
          << "error " << static_cast<uint32_t>(error.value_or(abi::ResizeError::kOk));
    };
    return testing::RunCrashSweep(sweep);
  }

  void MakeQcow2(const std::string& name, const std::string& options, uint64_t size,
                 const std::string& writes) {
    ASSERT_EQ(Shell("qemu-img create -q -f qcow2 -o " + options + " " + Path(name) + " " +
                  std::to_string(size)),
              0);
    ASSERT_EQ(Shell("qemu-io " + writes + " " + Path(name)), 0);
  }

  // Interrupts the growth of a twoGbMaxExtentSparse image (made by qemu-img, `capacity`, data at
  // both ends) to `size` after each write. Every interrupted image must be check-clean and read
  // as the old content followed by zeros; a failed run must leave exactly the old files (the
  // host removes the extent files it created); the completed one reads as qemu-img's resize of
  // a raw copy and accepts writes at its new end.
  uint64_t SweepSplitVmdk(uint64_t capacity, uint64_t size) {
    auto sandbox = OpenSandbox(SandboxChoice::kAuto, nullptr);
    EXPECT_TRUE(sandbox.ok()) << sandbox.status().message();
    if (!sandbox.ok()) return 0;
    const fs::path original = dir_ / "orig";
    const fs::path work = dir_ / "work";
    fs::create_directories(original);
    EXPECT_EQ(Shell("qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse " +
                    (original / "t.vmdk").string() + " " + std::to_string(capacity)),
              0);
    EXPECT_EQ(Shell("qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 " +
                    std::to_string(capacity - 65536) + " 64k' " + (original / "t.vmdk").string()),
              0);
    const std::string expected = Path("expected.raw");
    EXPECT_EQ(Shell("qemu-img convert -O raw " + (original / "t.vmdk").string() + " " + expected +
                    " && qemu-img resize -q -f raw " + expected + " " + std::to_string(size)),
              0);
    std::vector<std::string> old_files;
    for (const auto& e : fs::directory_iterator(original)) {
      old_files.push_back(e.path().filename().string());
    }
    std::sort(old_files.begin(), old_files.end());
    const std::string image = (work / "t.vmdk").string();
    ResizeRequest request;
    request.path = image;
    request.size = size;
    std::optional<abi::ResizeError> error;
    testing::CrashSweep sweep;
    sweep.name = "resize split vmdk " + std::to_string(capacity) + " to " + std::to_string(size);
    sweep.restore = [&] {
      fs::remove_all(work);
      fs::copy(original, work);
    };
    sweep.run = [&](uint64_t writes) { return RunInterrupted(**sandbox, request, writes, &error); };
    sweep.verify = [&](uint64_t, bool completed) {
      EXPECT_EQ(testing::QemuCheck(image, "vmdk"), 0);
      const std::string old_image = (original / "t.vmdk").string();
      EXPECT_TRUE(testing::SameGuestContent(old_image, image, "vmdk", "vmdk"));
      if (completed) {
        EXPECT_TRUE(testing::SameGuestContent(expected, image, "raw", "vmdk"));
        EXPECT_EQ(Shell("qemu-io -f vmdk -c 'write -P 3 " + std::to_string(size - 65536) +
                        " 64k' " + image + " | grep -q wrote && qemu-img check -q " + image),
                  0);
        return;
      }
      EXPECT_EQ(error, abi::ResizeError::kIoError);
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(work)) {
        files.push_back(e.path().filename().string());
      }
      std::sort(files.begin(), files.end());
      EXPECT_EQ(files, old_files);
    };
    return testing::RunCrashSweep(sweep);
  }

  fs::path dir_;
};

TEST_F(ResizeCrashTest, SplitVmdkGrowWithinTheLastExtent) {
  EXPECT_GT(SweepSplitVmdk(3ull << 30, 3584ull << 20), 4u);
}

TEST_F(ResizeCrashTest, SplitVmdkGrowIntoOneNewExtent) {
  EXPECT_GT(SweepSplitVmdk(3ull << 30, 5ull << 30), 6u);
}

TEST_F(ResizeCrashTest, SplitVmdkGrowIntoSeveralNewExtents) {
  EXPECT_GT(SweepSplitVmdk(3ull << 30, (9ull << 30) + 512), 10u);
}

TEST_F(ResizeCrashTest, Qcow2GrowRelocatingL1AndRefcountTable) {
  MakeQcow2("a.qcow2", "cluster_size=512,refcount_bits=64", 4 << 20,
            "-c 'write -P 1 0 4k' -c 'write -P 2 4190208 4k'");
  ResizeRequest request;
  request.size = 1ull << 32;
  const uint64_t writes = Sweep(Path("a.qcow2"), "qcow2", "4G", request);
  EXPECT_GT(writes, 4u);
}

TEST_F(ResizeCrashTest, Qcow2GrowWithSnapshot) {
  MakeQcow2("s.qcow2", "cluster_size=4096,refcount_bits=16", 1 << 20, "-c 'write -P 3 0 64k'");
  ASSERT_EQ(Shell("qemu-img snapshot -c s1 " + Path("s.qcow2")), 0);
  ASSERT_EQ(Shell("qemu-io -c 'write -P 4 0 8k' " + Path("s.qcow2")), 0);
  ResizeRequest request;
  request.size_mode = abi::ResizeSizeMode::kGrowBy;
  request.size = 20ull << 30;
  EXPECT_GT(Sweep(Path("s.qcow2"), "qcow2", "+20G", request), 2u);
}

TEST_F(ResizeCrashTest, Qcow2GrowWithPreallocation) {
  MakeQcow2("p.qcow2", "cluster_size=4096,refcount_bits=8", 1000 << 10, "-c 'write -P 12 996k 4k'");
  ResizeRequest request;
  request.size = 3 << 20;
  request.preallocation = abi::Preallocation::kFull;
  EXPECT_GT(Sweep(Path("p.qcow2"), "qcow2", "--preallocation=full 3M", request), 3u);
}

TEST_F(ResizeCrashTest, Qcow2GrowOverALongerBackingFile) {
  MakeQcow2("base.qcow2", "cluster_size=4096", 8 << 20, "-c 'write -P 13 0 8M'");
  ASSERT_EQ(Shell("qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=16 -b base.qcow2 "
                  "-F qcow2 " + Path("o.qcow2") + " 1M"),
            0);
  ResizeRequest request;
  request.size = 6 << 20;
  EXPECT_GT(Sweep(Path("o.qcow2"), "qcow2", "6M", request), 3u);
}

TEST_F(ResizeCrashTest, Qcow2ShrinkThroughAnL2Table) {
  MakeQcow2("k.qcow2", "cluster_size=4096,refcount_bits=1", 64 << 20,
            "-c 'write -P 5 0 1M' -c 'write -P 6 10M 64k' -c 'write -P 7 40M 2M' "
            "-c 'write -P 8 63M 1M'");
  ResizeRequest request;
  request.allow_shrink = true;
  request.size = 10ull << 20;
  request.size += 8192;
  EXPECT_GT(Sweep(Path("k.qcow2"), "qcow2", std::to_string(request.size), request), 3u);
}

TEST_F(ResizeCrashTest, Qcow2ShrinkCopiesAnL2TableASnapshotShares) {
  MakeQcow2("h.qcow2", "cluster_size=512,refcount_bits=16", 4 << 20, "-c 'write -P 10 0 4M'");
  ASSERT_EQ(Shell("qemu-img snapshot -c s1 " + Path("h.qcow2")), 0);
  ASSERT_EQ(Shell("qemu-io -c 'write -P 11 0 4k' " + Path("h.qcow2")), 0);
  ResizeRequest request;
  request.allow_shrink = true;
  request.size = 1000 << 10;
  EXPECT_GT(Sweep(Path("h.qcow2"), "qcow2", "1000k", request), 3u);
}

TEST_F(ResizeCrashTest, RawGrowAndShrink) {
  ASSERT_EQ(Shell("qemu-img create -q -f raw " + Path("r.raw") + " 1M"), 0);
  ASSERT_EQ(Shell("qemu-io -f raw -c 'write -P 9 0 1M' " + Path("r.raw")), 0);
  ResizeRequest grow;
  grow.size = 9 << 20;
  grow.preallocation = abi::Preallocation::kFull;
  EXPECT_GE(Sweep(Path("r.raw"), "raw", "--preallocation=full 9M", grow), 3u);
  ResizeRequest shrink;
  shrink.allow_shrink = true;
  shrink.size = 4096;
  EXPECT_EQ(Sweep(Path("r.raw"), "raw", "4096", shrink), 2u);
}

}  // namespace
}  // namespace instar::vmm
