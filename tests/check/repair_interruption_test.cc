// Crash consistency of `check -r`: the repair of each corrupted image is interrupted after
// every possible number of writes (the host fails every later write, as a crash would drop
// them), and qemu-img check must then find the image no worse than before the repair: no more
// corruptions, and a leak-only image never corrupt. Needs /dev/kvm, qemu-img, qemu-io, python3.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "tests/lib/crash_sweep.h"
#include "vmm/launcher/sandbox_factory.h"
#include "vmm/operations/check_request.h"

namespace instar::vmm {
namespace {

struct Verdict {
  int exit_code = -1;
  long corruptions = 0;
};

std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  out += "\nexit=" + std::to_string(WEXITSTATUS(status));
  return out;
}

long JsonNumber(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\": ");
  return at == std::string::npos ? 0 : std::atol(json.c_str() + at + key.size() + 4);
}

Verdict QemuCheck(const std::string& path) {
  const std::string out = Shell("qemu-img check --output=json '" + path + "' 2>/dev/null");
  Verdict v;
  v.exit_code = std::atoi(out.c_str() + out.rfind("exit=") + 5);
  v.corruptions = JsonNumber(out, "corruptions");
  return v;
}

class RepairInterruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sandbox = OpenSandbox(SandboxChoice::kAuto, nullptr);
    ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
    sandbox_ = std::move(sandbox).value();
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/repair_interruption";
    ::mkdir(dir_.c_str(), 0700);
    const std::string runfiles =
        std::string(std::getenv("TEST_SRCDIR")) + "/" + std::getenv("TEST_WORKSPACE");
    helper_ = runfiles + "/tests/check/qcow2_corrupt.py";
    edge_ = runfiles + "/tests/check/refblock_edge_image.sh";
  }

  // `options`: qemu-img create -o (empty: its defaults).
  std::string MakeCorrupt(const std::string& defect, bool snapshot, const std::string& options) {
    const std::string path = dir_ + "/" + defect + (snapshot ? "-snap" : "") + ".qcow2";
    std::string cmd = "rm -f '" + path + "' && qemu-img create -q -f qcow2 " +
                      (options.empty() ? "" : "-o " + options + " ") + "'" + path +
                      "' 64M && qemu-io -c 'write 0 1M' -c 'write 10M 64k' '" + path +
                      "' >/dev/null";
    if (snapshot) {
      cmd += " && qemu-img snapshot -c s1 '" + path + "' && qemu-io -c 'write 512k 64k' '" +
             path + "' >/dev/null";
    }
    cmd += " && python3 '" + helper_ + "' '" + path + "' " + defect;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return path;
  }

  // An image whose file ends at a refcount block boundary (refblock_edge_image.sh `spec`), its
  // last snapshot entry incomplete: the rewritten table needs new refcount structures.
  std::string MakeEdge(const std::string& name, const std::string& spec) {
    const std::string path = dir_ + "/" + name + ".qcow2";
    const std::string cmd = "bash '" + edge_ + "' '" + path + "' " + spec + " && python3 '" +
                            helper_ + "' '" + path + "' snapshot_last_incomplete";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return path;
  }

  // Runs the repair, with every write after the first `writes` failing when given.
  void Repair(const std::string& path, abi::CheckRepair mode, std::optional<uint64_t> writes) {
    CheckRequest request;
    request.path = path;
    request.repair = mode;
    request.max_clusters_per_pass = per_pass_;
    request.hooks.fail_writes_after = writes;
    (void)RunCheck(*sandbox_, request);  // an interrupted repair may fail any way it likes
  }

  // `per_pass`: clusters per window of the count (0: what fits), `options` as MakeCorrupt's.
  void Sweep(const std::string& defect, bool snapshot, abi::CheckRepair mode,
             uint64_t per_pass = 0, const std::string& options = "") {
    per_pass_ = per_pass;
    SweepImage(MakeCorrupt(defect, snapshot, options),
               defect + (snapshot ? " (snapshot)" : "") +
                   (per_pass != 0 ? " windows of " + std::to_string(per_pass) : ""),
               mode);
  }

  void SweepImage(const std::string& original, const std::string& label, abi::CheckRepair mode) {
    const Verdict before = QemuCheck(original);
    const std::string complete = dir_ + "/complete.qcow2";
    const std::string work = dir_ + "/work.qcow2";
    ASSERT_EQ(std::system(("cp '" + original + "' '" + complete + "'").c_str()), 0);
    Repair(complete, mode, std::nullopt);
    ASSERT_FALSE(testing::SameBytes(original, complete)) << "the repair wrote nothing";
    testing::CrashSweep sweep;
    sweep.name = "check -r " + std::string(mode == abi::CheckRepair::kAll ? "all " : "leaks ") +
                 label;
    // 400 writes is far above any case here.
    sweep.max_points = 400;
    sweep.restore = [&] {
      ASSERT_EQ(std::system(("cp '" + original + "' '" + work + "'").c_str()), 0);
    };
    // An interrupted repair may fail any way it likes; the sweep ends where the interrupted
    // repair wrote what the complete one did.
    sweep.run = [&](uint64_t writes) {
      Repair(work, mode, writes);
      return testing::SameBytes(work, complete);
    };
    sweep.verify = [&](uint64_t, bool) {
      const Verdict after = QemuCheck(work);
      EXPECT_NE(after.exit_code, 1);
      EXPECT_LE(after.corruptions, before.corruptions);
      if (before.exit_code == 3 || before.exit_code == 0) {
        EXPECT_NE(after.exit_code, 2);
      }
    };
    // Every write of the repair was an interruption point.
    EXPECT_GT(testing::RunCrashSweep(sweep), 1u);
  }

  std::unique_ptr<Sandbox> sandbox_;
  std::string dir_;
  std::string helper_;
  std::string edge_;
  uint64_t per_pass_ = 0;
};

TEST_F(RepairInterruptionTest, LeakRepair) { Sweep("leak_many", false, abi::CheckRepair::kLeaks); }
TEST_F(RepairInterruptionTest, RefcountTooHigh) {
  Sweep("refcount_high", false, abi::CheckRepair::kAll);
}
TEST_F(RepairInterruptionTest, RefcountTooLowWithSnapshot) {
  Sweep("refcount_low", true, abi::CheckRepair::kAll);
}
TEST_F(RepairInterruptionTest, CopiedFlags) { Sweep("copied_l2_clear", false, abi::CheckRepair::kAll); }
TEST_F(RepairInterruptionTest, Rebuild) { Sweep("refcount_zero", false, abi::CheckRepair::kAll); }
TEST_F(RepairInterruptionTest, RebuildWithSnapshot) {
  Sweep("refcount_zero", true, abi::CheckRepair::kAll);
}
// The rebuild window by window: each refcount block in slices, the table, then the header.
TEST_F(RepairInterruptionTest, RebuildInWindows) {
  Sweep("refcount_zero", false, abi::CheckRepair::kAll, 8);
}
TEST_F(RepairInterruptionTest, RebuildInWindowsWithSnapshot) {
  Sweep("refcount_zero", true, abi::CheckRepair::kAll, 8);
}
// A refcount block per 64 clusters: many blocks, several per window.
TEST_F(RepairInterruptionTest, RebuildManyBlocksInWindows) {
  Sweep("refcount_zero", false, abi::CheckRepair::kAll, 256,
        "cluster_size=512,refcount_bits=64");
}
// The snapshot table rewritten into free clusters: new table, its refcounts, the header, then
// the old table's refcounts.
TEST_F(RepairInterruptionTest, SnapshotTableRewrite) {
  Sweep("snapshot_incomplete", true, abi::CheckRepair::kAll);
}
TEST_F(RepairInterruptionTest, SnapshotTableMissingEntries) {
  Sweep("snapshot_count_lies", true, abi::CheckRepair::kAll);
}
// Snapshot-table rewrites that need new refcount structures (refblock_edge_image.sh specs).
struct EdgeCase {
  const char* name;
  const char* spec;
};

class RepairInterruptionEdgeTest : public RepairInterruptionTest,
                                   public ::testing::WithParamInterface<EdgeCase> {};

TEST_P(RepairInterruptionEdgeTest, SnapshotTableRewrite) {
  SweepImage(MakeEdge(GetParam().name, GetParam().spec), GetParam().name,
             abi::CheckRepair::kAll);
}

INSTANTIATE_TEST_SUITE_P(
    Edges, RepairInterruptionEdgeTest,
    ::testing::Values(
        // Past the last refcount block: a new block (counting itself), its table entry, then
        // the table.
        EdgeCase{"new-refcount-block", "64 32768 0 1 2 8k"},
        // A table across the last block's boundary: the block goes after it.
        EdgeCase{"table-across-a-boundary", "64 32768 1 3 250 8k"},
        // Past the refcount table's reach: new blocks and a larger table, the header switch,
        // the old table freed.
        EdgeCase{"larger-refcount-table", "64 2097152 0 1 2 1950k"},
        // The table ends inside the file's last sector: the file is cut back to its last byte.
        EdgeCase{"partial-last-sector", "64 32768 1 1 250 8k"}),
    [](const ::testing::TestParamInfo<EdgeCase>& info) {
      std::string name;
      for (const char* c = info.param.name; *c != 0; ++c) {
        if (*c != '-') name += *c;
      }
      return name;
    });

}  // namespace
}  // namespace instar::vmm
