// CommitPlan on chains qemu-img builds, held in memory: the base's writer applies its steps to
// the base's bytes as they come. The oracle is crates/chain_read itself: afterwards the base
// must read, over the top's whole size, exactly what the top read before; beyond the top's
// size it must read what it read before; the top must read as before; and the written base
// must be `qemu-img check` clean.
#include "crates/commit/commit_plan.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "crates/base/arena.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/vmdk_writer.h"
#include "gtest/gtest.h"

namespace instar::commit {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

int Shell(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool ReadBytes(void* ctx, uint64_t off, uint64_t len, uint8_t* out) {
  const Bytes& b = *static_cast<Bytes*>(ctx);
  if (off > b.size() || len > b.size() - off) return false;
  std::copy(b.begin() + off, b.begin() + off + len, out);
  return true;
}

// Applies one step to a file's bytes, as the guest's StepExecutor applies it to a device.
bool ApplyStep(Bytes& b, const image_write::Step& step) {
  const uint64_t end = step.offset + step.length;
  switch (step.kind) {
    case image_write::StepKind::kWrite:
      if (b.size() < end) b.resize(end);
      std::copy(step.bytes, step.bytes + step.length, b.begin() + step.offset);
      return true;
    case image_write::StepKind::kZero:
      if (b.size() < end) b.resize(end);
      std::fill(b.begin() + step.offset, b.begin() + end, 0);
      return true;
    case image_write::StepKind::kCopy: {
      const Bytes source(b.begin() + step.source, b.begin() + step.source + step.length);
      if (b.size() < end) b.resize(end);
      std::copy(source.begin(), source.end(), b.begin() + step.offset);
      return true;
    }
    case image_write::StepKind::kSetSize: b.resize(step.length); return true;
  }
  return false;
}

// One image file in memory, applying steps as they are emitted.
struct File {
  std::string name;
  std::string format;
  Bytes bytes;

  base::ImageReader Reader() { return {&bytes, ReadBytes, bytes.size()}; }
  // Reads past the end as zeros (what CommitTarget expects of the base's reader).
  base::ImageReader ZeroFilled() {
    return {&bytes,
            [](void* ctx, uint64_t off, uint64_t len, uint8_t* out) {
              const Bytes& b = *static_cast<Bytes*>(ctx);
              for (uint64_t i = 0; i < len; ++i) out[i] = off + i < b.size() ? b[off + i] : 0;
              return true;
            },
            UINT64_MAX};
  }
  image_write::StepSink Sink() {
    return {this, [](void* ctx, const image_write::Step& step) {
              return ApplyStep(static_cast<File*>(ctx)->bytes, step);
            }};
  }
};

chain_read::ImageFormat ReadFormat(const std::string& format) {
  if (format == "qcow2") return chain_read::ImageFormat::kQcow2;
  if (format == "vmdk") return chain_read::ImageFormat::kVmdk;
  return chain_read::ImageFormat::kRaw;
}

class CommitPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / "commit_plan";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    memory_.resize(64 << 20);
  }

  // Adds a layer on top of the chain so far (built bottom first).
  void AddLayer(const std::string& name, const std::string& format, const std::string& size,
             const std::string& options, const std::vector<std::string>& io = {}) {
    std::string cmd = "cd " + dir_.string() + " && qemu-img create -q -f " + format;
    std::string opts = options;
    if (!files_.empty()) {
      opts += std::string(opts.empty() ? "" : ",") + "backing_file=" + files_.front().name +
              ",backing_fmt=" + files_.front().format;
    }
    if (!opts.empty()) cmd += " -o " + opts;
    ASSERT_EQ(Shell(cmd + " " + name + " " + size), 0);
    std::string write = "qemu-io -f " + format;
    for (const std::string& c : io) write += " -c '" + c + "'";
    if (!io.empty()) {
      ASSERT_EQ(Shell(write + " " + (dir_ / name).string()), 0);
    }
    std::ifstream in(dir_ / name, std::ios::binary);
    File f{name, format, Bytes(std::istreambuf_iterator<char>(in), {})};
    files_.insert(files_.begin(), std::move(f));
  }

  // The guest view of files_[first..] (a chain from `first` down), `length` bytes.
  Bytes View(size_t first, uint64_t length) {
    base::Arena arena(memory_.data() + (32 << 20), 32 << 20);
    std::vector<chain_read::Layer*> layers;
    for (size_t i = first; i < files_.size(); ++i) {
      readers_.push_back(std::make_unique<base::ImageReader>(files_[i].Reader()));
      auto opened = chain_read::Layer::Open(ReadFormat(files_[i].format), *readers_.back(), arena);
      EXPECT_TRUE(opened.ok()) << files_[i].name;
      if (!opened.ok()) return {};
      layers.push_back(opened.value());
    }
    auto chain = chain_read::Chain::Of(layers.data(), static_cast<uint32_t>(layers.size()));
    EXPECT_TRUE(chain.ok());
    Bytes out(length);
    EXPECT_TRUE(chain.value().Read(0, length, out.data()).ok());
    return out;
  }

  // Commits files_[0..base) into files_[base] and checks the oracle.
  void CommitAndVerify(size_t base) {
    base::Arena arena(memory_.data(), 32 << 20);
    std::vector<chain_read::Layer*> above, below;
    for (size_t i = 0; i < files_.size(); ++i) {
      if (i == base) continue;
      readers_.push_back(std::make_unique<base::ImageReader>(files_[i].Reader()));
      auto opened = chain_read::Layer::Open(ReadFormat(files_[i].format), *readers_.back(), arena);
      ASSERT_TRUE(opened.ok()) << files_[i].name;
      (i < base ? above : below).push_back(opened.value());
    }
    const uint64_t top_size = above.front()->virtual_size();
    File& b = files_[base];
    auto probe = chain_read::Layer::Open(ReadFormat(b.format), b.Reader(), arena);
    ASSERT_TRUE(probe.ok());
    const uint64_t base_size = probe.value()->virtual_size();
    const uint64_t span = top_size > base_size ? top_size : base_size;
    const Bytes old_top = View(0, top_size);
    const Bytes old_base = View(base, span);

    auto above_chain = chain_read::Chain::Of(above.data(), static_cast<uint32_t>(above.size()));
    ASSERT_TRUE(above_chain.ok());
    chain_read::Chain below_chain;
    if (!below.empty()) {
      auto opened = chain_read::Chain::Of(below.data(), static_cast<uint32_t>(below.size()));
      ASSERT_TRUE(opened.ok());
      below_chain = opened.value();
    }
    const base::ImageReader base_reader = b.Reader();
    CommitTarget target;
    if (b.format == "qcow2") {
      auto w = image_write::Qcow2Writer::Open(base_reader, b.Sink(), arena);
      ASSERT_TRUE(w.ok()) << static_cast<int>(w.error().code);
      target = CommitTarget::Qcow2(w.value(), b.ZeroFilled());
    } else if (b.format == "vmdk") {
      auto w = image_write::VmdkWriter::Open(base_reader, b.Sink(), arena);
      ASSERT_TRUE(w.ok()) << static_cast<int>(w.error().code);
      target = CommitTarget::Vmdk(w.value(), b.ZeroFilled());
    } else {
      target = CommitTarget::Raw(b.Sink(), b.ZeroFilled(), (b.bytes.size() + 511) / 512 * 512);
    }
    CommitLayers layers{&above_chain.value(), &target, below.empty() ? nullptr : &below_chain};
    std::unique_ptr<uint8_t[]> buffer(new uint8_t[kCommitBatchBytes]);
    auto plan = std::make_unique<CommitPlan>(layers, buffer.get(), kCommitBatchBytes,
                                             CommitProgress{});
    ASSERT_TRUE(plan->GrowBase().ok());
    chain_read::Layer* base_layer = nullptr;
    if (b.format != "raw") {
      auto opened = chain_read::Layer::Open(ReadFormat(b.format), b.Reader(), arena);
      ASSERT_TRUE(opened.ok());
      base_layer = opened.value();
    }
    auto copied = plan->Copy(base_layer);
    ASSERT_TRUE(copied.ok()) << static_cast<int>(copied.error().code.kind);

    const Bytes new_base = View(base, span);
    ASSERT_EQ(new_base.size(), old_base.size());
    for (uint64_t at = 0; at < span; at += 512) {
      const Bytes& want = at < top_size ? old_top : old_base;
      if (!std::equal(new_base.begin() + at, new_base.begin() + at + 512, want.begin() + at)) {
        ADD_FAILURE() << "base offset " << at << " does not read what it should";
        break;
      }
    }
    EXPECT_EQ(View(0, top_size), old_top);
    if (b.format == "qcow2") {
      const fs::path written = dir_ / ("written-" + b.name);
      std::ofstream(written, std::ios::binary)
          .write(reinterpret_cast<const char*>(b.bytes.data()),
                 static_cast<std::streamsize>(b.bytes.size()));
      EXPECT_EQ(Shell("qemu-img check -f qcow2 " + written.string()), 0);
    }
  }

  fs::path dir_;
  std::vector<File> files_;  // top first
  std::vector<std::unique_ptr<base::ImageReader>> readers_;
  Bytes memory_;
};

TEST_F(CommitPlanTest, DataZerosAndBoundariesIntoTheImmediateBase) {
  AddLayer("base.qcow2", "qcow2", "4M", "", {"write -P 1 0 4M"});
  AddLayer("top.qcow2", "qcow2", "4M", "",
        {"write -P 2 0 64k", "write -z 2M 128k", "write -P 3 1047552 1k", "write -P 4 4128768 64k"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, SmallTopClustersCompleteLargeBaseClusters) {
  AddLayer("base.qcow2", "qcow2", "8M", "cluster_size=2M,refcount_bits=1", {"write -P 1 0 8M"});
  AddLayer("top.qcow2", "qcow2", "8M", "cluster_size=512",
        {"write -P 2 512 512", "write -z 3M 4k", "write -P 3 8387584 512"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, LargeTopClustersOverSmallBaseClusters) {
  AddLayer("base.qcow2", "qcow2", "4M", "cluster_size=512,refcount_bits=64", {"write -P 1 0 1M"});
  AddLayer("top.qcow2", "qcow2", "4M", "cluster_size=2M", {"write -P 2 1M 4k", "write -z 2M 2M"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, ThroughIntermediatesWithZerosHidingTheBase) {
  AddLayer("base.qcow2", "qcow2", "3M", "", {"write -P 1 0 3M"});
  AddLayer("mid.qcow2", "qcow2", "3M", "cluster_size=4096", {"write -z 0 1M", "write -P 2 2M 4k"});
  AddLayer("top.qcow2", "qcow2", "3M", "", {"write -P 3 512k 64k"});
  CommitAndVerify(2);
}

TEST_F(CommitPlanTest, GrowsASmallerBaseAndZeroesOverItsLongerBacking) {
  AddLayer("root.qcow2", "qcow2", "4M", "", {"write -P 1 0 4M"});
  AddLayer("base.qcow2", "qcow2", "1M", "", {"write -P 2 0 64k"});
  AddLayer("top.qcow2", "qcow2", "3M", "", {"write -P 3 2M 64k"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, ALargerBaseKeepsWhatLiesPastTheTop) {
  AddLayer("base.qcow2", "qcow2", "2M", "cluster_size=2M", {"write -P 1 0 2M"});
  AddLayer("top.qcow2", "qcow2", "1000k", "cluster_size=4096", {"write -P 2 996k 4k"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, SnapshotSharedClustersAreCopiedOnWrite) {
  AddLayer("base.qcow2", "qcow2", "1M", "", {"write -P 1 0 1M"});
  ASSERT_EQ(Shell("qemu-img snapshot -c s1 " + (dir_ / "base.qcow2").string()), 0);
  std::ifstream in(dir_ / "base.qcow2", std::ios::binary);
  files_.front().bytes = Bytes(std::istreambuf_iterator<char>(in), {});
  AddLayer("top.qcow2", "qcow2", "1M", "", {"write -P 2 64k 128k", "write -z 512k 64k"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, CompressedClustersAboveAndInTheBase) {
  AddLayer("base.qcow2", "qcow2", "1M", "", {"write -c -P 1 0 128k"});
  AddLayer("top.qcow2", "qcow2", "1M", "cluster_size=4096", {"write -c -P 2 0 4k", "write -P 3 68k 4k"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, VmdkAndRawBases) {
  AddLayer("base.vmdk", "vmdk", "2M", "", {"write -P 1 0 1M"});
  AddLayer("top.qcow2", "qcow2", "2M", "", {"write -P 2 512k 1M", "write -z 0 64k"});
  CommitAndVerify(1);
  files_.clear();
  AddLayer("base.raw", "raw", "1M", "", {"write -P 3 0 1M"});
  AddLayer("top.qcow2", "qcow2", "2M", "", {"write -P 4 1536k 64k", "write -z 0 64k"});
  CommitAndVerify(1);
}

TEST_F(CommitPlanTest, AVmdkBaseCannotGrow) {
  AddLayer("base.vmdk", "vmdk", "1M", "", {"write -P 1 0 1M"});
  AddLayer("top.qcow2", "qcow2", "2M", "", {"write -P 2 1536k 64k"});
  base::Arena arena(memory_.data(), 32 << 20);
  auto top = chain_read::Layer::Open(chain_read::ImageFormat::kQcow2, files_[0].Reader(), arena);
  ASSERT_TRUE(top.ok());
  chain_read::Layer* layers[] = {top.value()};
  auto above = chain_read::Chain::Of(layers, 1);
  ASSERT_TRUE(above.ok());
  auto w = image_write::VmdkWriter::Open(files_[1].Reader(), files_[1].Sink(), arena);
  ASSERT_TRUE(w.ok());
  CommitTarget target = CommitTarget::Vmdk(w.value(), files_[1].ZeroFilled());
  const Bytes before = files_[1].bytes;
  CommitLayers commit_layers{&above.value(), &target, nullptr};
  uint8_t buffer[4096];
  CommitPlan plan(commit_layers, buffer, sizeof buffer, CommitProgress{});
  auto grown = plan.GrowBase();
  ASSERT_FALSE(grown.ok());
  EXPECT_EQ(grown.error().code.kind, CommitFailure::Kind::kBaseCannotGrow);
  EXPECT_EQ(files_[1].bytes, before);
}

}  // namespace
}  // namespace instar::commit
