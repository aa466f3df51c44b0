// Host tests of the qcow2 check planner on synthetic images built in memory: clean images at
// every refcount width, each defect class's findings and counts, multi-pass equivalence,
// repair write order, and bounded behaviour on hostile bytes.
#include "crates/check/qcow2_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "crates/base/endian.h"
#include "crates/qcow2/entries.h"

namespace instar::check {
namespace {

struct Write {
  uint64_t offset;
  uint64_t length;
};

struct MemoryFile {
  std::vector<uint8_t> bytes;
  std::vector<Write> writes;

  ImageAccess Access() {
    ImageAccess io;
    io.context = this;
    io.read = [](void* c, uint64_t offset, uint64_t length, uint8_t* out) {
      auto* f = static_cast<MemoryFile*>(c);
      for (uint64_t i = 0; i < length; ++i) {
        out[i] = offset + i < f->bytes.size() ? f->bytes[offset + i] : 0;
      }
      return true;
    };
    io.write = [](void* c, uint64_t offset, uint64_t length, const uint8_t* in) {
      auto* f = static_cast<MemoryFile*>(c);
      // The host bounds how far a repair may grow the file.
      if (offset + length > (64u << 20)) return false;
      if (offset + length > f->bytes.size()) f->bytes.resize(offset + length);
      std::memcpy(f->bytes.data() + offset, in, length);
      f->writes.push_back({offset, length});
      return true;
    };
    io.size = [](void* c) { return static_cast<uint64_t>(static_cast<MemoryFile*>(c)->bytes.size()); };
    return io;
  }
};

struct Findings {
  std::vector<abi::CheckFinding> all;
  FindingSink Sink() {
    FindingSink s;
    s.context = this;
    s.finding = [](void* c, const abi::CheckFinding& f) { static_cast<Findings*>(c)->all.push_back(f); };
    s.snapshot_finding = [](void*, const abi::CheckSnapshotFinding&) {};
    return s;
  }
  // As the host prints them: sorted by their order key, stably; the key itself dropped.
  std::vector<abi::CheckFinding> Printed() const {
    std::vector<abi::CheckFinding> sorted = all;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.order < b.order; });
    for (auto& f : sorted) f.order = 0;
    return sorted;
  }
  size_t Count(abi::FindingKind kind) const {
    size_t n = 0;
    for (const auto& f : all) n += f.kind == static_cast<uint32_t>(kind);
    return n;
  }
};

// The findings of `many` print exactly as those of `one` (same findings, same order).
void ExpectSamePrinted(const Findings& many, const Findings& one, const std::string& what) {
  const auto printed = many.Printed();
  const auto expected = one.Printed();
  ASSERT_EQ(printed.size(), expected.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(std::memcmp(&printed[i], &expected[i], sizeof printed[i]), 0)
        << what << " finding " << i << " kind " << printed[i].kind << " vs " << expected[i].kind;
  }
}

// Layout: 0 header, 1 refcount table, 2 refcount block, 3 L1, 4 L2, 5.. data clusters.
struct Image {
  uint32_t cluster_bits;
  uint32_t order;
  uint64_t data_clusters;
  MemoryFile file;

  uint64_t cs() const { return uint64_t{1} << cluster_bits; }
  uint8_t* at(uint64_t offset) { return file.bytes.data() + offset; }
  void SetRefcount(uint64_t cluster, uint64_t value) {
    qcow2::SetRefcount(at(2 * cs()), order, cluster, value);
  }
  uint64_t L2EntryOffset(uint64_t j) const { return 4 * cs() + j * 8; }

  Image(uint32_t bits, uint32_t refcount_order, uint64_t data)
      : cluster_bits(bits), order(refcount_order), data_clusters(data) {
    file.bytes.assign((5 + data) * cs(), 0);
    uint8_t* h = at(0);
    base::StoreBe32(h, 0x514649FB);
    base::StoreBe32(h + 4, 3);
    base::StoreBe32(h + 20, bits);
    base::StoreBe64(h + 24, (cs() / 8) * cs());  // one L2 table's worth
    base::StoreBe32(h + 36, 1);                   // l1_size
    base::StoreBe64(h + 40, 3 * cs());
    base::StoreBe64(h + 48, 1 * cs());
    base::StoreBe32(h + 56, 1);
    base::StoreBe32(h + 96, refcount_order);
    base::StoreBe32(h + 100, 104);
    base::StoreBe64(at(cs()), 2 * cs());
    base::StoreBe64(at(3 * cs()), qcow2::EncodeL1(4 * cs(), true));
    for (uint64_t j = 0; j < data; ++j) {
      base::StoreBe64(at(L2EntryOffset(j)), qcow2::EncodeL2Normal((5 + j) * cs(), true));
    }
    for (uint64_t c = 0; c < 5 + data; ++c) SetRefcount(c, 1);
  }
};

// Snapshot "1" whose L1 shares the active L2 table, in two new clusters (table, L1); the
// shared clusters' refcounts become 2 (saturated at the image's width) and lose OFLAG_COPIED.
void AddSnapshot(Image& image) {
  const uint64_t cs = image.cs();
  const uint64_t table = image.file.bytes.size();
  image.file.bytes.resize(table + 2 * cs);
  uint8_t* e = image.at(table);
  base::StoreBe64(e, table + cs);
  base::StoreBe32(e + 8, 1);
  base::StoreBe16(e + 12, 1);
  base::StoreBe16(e + 14, 1);
  base::StoreBe32(e + 36, 24);
  base::StoreBe64(e + 48, base::LoadBe64(image.at(24)));
  base::StoreBe64(e + 56, ~uint64_t{0});
  e[64] = '1';
  e[65] = 's';
  base::StoreBe32(image.at(60), 1);
  base::StoreBe64(image.at(64), table);
  base::StoreBe64(image.at(table + cs), qcow2::EncodeL1(4 * cs, false));
  base::StoreBe64(image.at(3 * cs), qcow2::EncodeL1(4 * cs, false));
  const uint64_t shared = image.order == 0 ? 1 : 2;
  image.SetRefcount(4, shared);
  for (uint64_t j = 0; j < image.data_clusters; ++j) {
    base::StoreBe64(image.at(image.L2EntryOffset(j)), qcow2::EncodeL2Normal((5 + j) * cs, false));
    image.SetRefcount(5 + j, shared);
  }
  image.SetRefcount(table / cs, 1);
  image.SetRefcount(table / cs + 1, 1);
}

struct CheckRun {
  abi::CheckResult result{};
  Findings findings;
  bool ok = false;
};

CheckRun Check(Image& image, abi::CheckRepair repair = abi::CheckRepair::kNone,
          uint64_t per_pass = 0) {
  static std::vector<uint8_t> scratch(13u << 20);
  base::Arena arena(scratch.data(), scratch.size());
  CheckRun run;
  CheckOptions options;
  options.repair = repair;
  options.max_clusters_per_pass = per_pass;
  const ImageAccess io = image.file.Access();
  const FindingSink sink = run.findings.Sink();
  run.ok = CheckQcow2(io, sink, arena, options, &run.result).ok();
  return run;
}

TEST(Qcow2Check, CleanAtEveryWidthAndClusterSize) {
  for (uint32_t bits : {9u, 12u, 16u}) {
    for (uint32_t order = 0; order <= 6; ++order) {
      Image image(bits, order, 4);
      const CheckRun run = Check(image);
      ASSERT_TRUE(run.ok);
      EXPECT_TRUE(run.findings.all.empty()) << bits << " " << order;
      EXPECT_EQ(run.result.corruptions + run.result.leaks + run.result.check_errors, 0u);
      EXPECT_EQ(run.result.allocated_clusters, 4u);
      EXPECT_EQ(run.result.image_end_offset, image.file.bytes.size());
      EXPECT_EQ(run.result.total_clusters, image.cs() / 8);
    }
  }
}

TEST(Qcow2Check, LeakIsReportedAndRepaired) {
  Image image(16, 4, 3);
  image.file.bytes.resize(image.file.bytes.size() + image.cs());
  image.SetRefcount(8, 1);
  CheckRun run = Check(image);
  EXPECT_EQ(run.result.leaks, 1u);
  ASSERT_EQ(run.findings.Count(abi::FindingKind::kLeakedCluster), 1u);
  EXPECT_EQ(run.findings.all[0].a, 8u);
  run = Check(image, abi::CheckRepair::kLeaks);
  EXPECT_EQ(run.result.leaks_fixed, 1u);
  EXPECT_EQ(run.result.leaks, 0u);
  EXPECT_EQ(Check(image).result.leaks, 0u);
}

TEST(Qcow2Check, ZeroRefcountNeedsRebuildAndHeaderIsWrittenLast) {
  Image image(12, 4, 3);
  image.SetRefcount(5, 0);
  CheckRun run = Check(image);
  EXPECT_EQ(run.findings.Count(abi::FindingKind::kClusterRefcountError), 1u);
  EXPECT_EQ(run.result.corruptions, 2u);  // the refcount, and OFLAG_COPIED on its entry
  image.file.writes.clear();
  run = Check(image, abi::CheckRepair::kAll);
  EXPECT_EQ(run.findings.Count(abi::FindingKind::kRebuilding), 1u);
  EXPECT_EQ(run.result.corruptions, 0u);
  ASSERT_FALSE(image.file.writes.empty());
  // Refcount blocks, then the table, then the header's table fields; then only repairs of
  // the old structure (now leaked) follow.
  size_t header_write = 0;
  for (size_t i = 0; i < image.file.writes.size(); ++i) {
    if (image.file.writes[i].offset == 48 && image.file.writes[i].length == 12) header_write = i;
  }
  ASSERT_GT(header_write, 1u);
  const uint64_t table = base::LoadBe64(image.at(48));
  EXPECT_EQ(image.file.writes[header_write - 1].offset, table);
  const CheckRun after = Check(image);
  EXPECT_EQ(after.result.corruptions + after.result.leaks, 0u);
}

TEST(Qcow2Check, SharedClusterOverflowsOneBitRefcounts) {
  Image image(12, 0, 3);
  base::StoreBe64(image.at(image.L2EntryOffset(1)), qcow2::EncodeL2Normal(5 * image.cs(), true));
  const CheckRun run = Check(image);
  EXPECT_EQ(run.findings.Count(abi::FindingKind::kRefcountOverflow), 1u);
  EXPECT_GE(run.result.corruptions, 1u);
}

TEST(Qcow2Check, MultiPassGivesTheSameFindings) {
  Image image(12, 4, 6);
  image.SetRefcount(6, 3);
  image.SetRefcount(1, 0);
  base::StoreBe64(image.at(image.L2EntryOffset(2)), qcow2::EncodeL2Normal(5 * image.cs(), true));
  const CheckRun one = Check(image);
  for (uint64_t per_pass : {1u, 2u, 5u}) {
    const CheckRun many = Check(image, abi::CheckRepair::kNone, per_pass);
    ASSERT_EQ(many.findings.all.size(), one.findings.all.size()) << per_pass;
    for (size_t i = 0; i < one.findings.all.size(); ++i) {
      EXPECT_EQ(std::memcmp(&many.findings.all[i], &one.findings.all[i], sizeof(abi::CheckFinding)), 0);
    }
    EXPECT_EQ(many.result.corruptions, one.result.corruptions);
    EXPECT_EQ(many.result.leaks, one.result.leaks);
    EXPECT_EQ(many.result.image_end_offset, one.result.image_end_offset);
    EXPECT_GT(many.result.passes, 1u);
  }
}

// Findings of every kind spread over the windows: refcount overflows (1-bit snapshots) and
// refcount blocks whose refcount is wrong, which each window reports for its own clusters,
// between reserved-bit findings, which only the first window reports; leaks and errors in the
// comparison. Printed in key order, any width of window gives the one-window output, and a
// repair (a rebuild under -r all) leaves the very same bytes.
TEST(Qcow2Check, EveryWindowWidthPrintsAndRepairsAsOneWindow) {
  for (uint32_t order : {0u, 4u, 6u}) {
    for (bool snapshot : {false, true}) {
      for (abi::CheckRepair repair :
           {abi::CheckRepair::kNone, abi::CheckRepair::kLeaks, abi::CheckRepair::kAll}) {
        Image original(9, order, 40);
        if (snapshot) AddSnapshot(original);
        const uint64_t cs = original.cs();
        // Reserved bits on two L2 entries (walked once per L1 that uses the table).
        for (uint64_t j : {3u, 30u}) {
          const uint64_t e = base::LoadBe64(original.at(original.L2EntryOffset(j)));
          base::StoreBe64(original.at(original.L2EntryOffset(j)), e | 0x100);
        }
        // Two entries sharing a data cluster near the end: an overflow there at 1 bit.
        base::StoreBe64(original.at(original.L2EntryOffset(38)),
                        qcow2::EncodeL2Normal(44 * cs, false));
        original.SetRefcount(7, 0);  // referenced, no refcount: a rebuild under -r all
        original.file.bytes.resize(original.file.bytes.size() + cs);
        original.SetRefcount(original.file.bytes.size() / cs - 1, 1);  // a leak at the end
        Image one_image = original;
        const CheckRun one = Check(one_image, repair);
        ASSERT_TRUE(one.ok);
        for (uint64_t per_pass : {1u, 3u, 8u, 16u, 64u}) {
          Image image = original;
          const CheckRun many = Check(image, repair, per_pass);
          ASSERT_TRUE(many.ok);
          const std::string what = "order " + std::to_string(order) + " snapshot " +
                                   std::to_string(snapshot) + " repair " +
                                   std::to_string(static_cast<int>(repair)) + " per_pass " +
                                   std::to_string(per_pass);
          ExpectSamePrinted(many.findings, one.findings, what);
          EXPECT_EQ(many.result.corruptions, one.result.corruptions) << what;
          EXPECT_EQ(many.result.leaks, one.result.leaks) << what;
          EXPECT_EQ(many.result.check_errors, one.result.check_errors) << what;
          EXPECT_EQ(many.result.corruptions_fixed, one.result.corruptions_fixed) << what;
          EXPECT_EQ(many.result.leaks_fixed, one.result.leaks_fixed) << what;
          EXPECT_EQ(many.result.image_end_offset, one.result.image_end_offset) << what;
          EXPECT_EQ(many.result.failure, one.result.failure) << what;
          if (per_pass < 40) {
            EXPECT_GT(many.result.passes, one.result.passes) << what;
          }
          EXPECT_TRUE(image.file.bytes == one_image.file.bytes) << what;
        }
        if (repair == abi::CheckRepair::kAll) {
          EXPECT_EQ(one.findings.Count(abi::FindingKind::kRebuilding), 1u);
          // The reserved bits stay (qemu does not repair them); the refcounts are right.
          const CheckRun after = Check(one_image);
          EXPECT_EQ(after.result.leaks, 0u);
          EXPECT_EQ(after.findings.Count(abi::FindingKind::kClusterRefcountError), 0u);
          EXPECT_EQ(after.findings.Count(abi::FindingKind::kL2ReservedBits), snapshot ? 4u : 2u);
        }
      }
    }
  }
}

// 512-byte clusters at 64 bits: a refcount block per 64 clusters, so the rebuild places two
// blocks and its table, some of them past a full window (queued for the next windows).
TEST(Qcow2Check, RebuildOfSeveralBlocksInWindowsIsTheOneWindowRebuild) {
  Image original(9, 6, 59);
  const uint64_t cs = original.cs();
  // Clusters 64 (the second block, the table's entry 1) and 65 (one more data cluster).
  original.file.bytes.resize(66 * cs);
  base::StoreBe64(original.at(cs + 8), 64 * cs);
  base::StoreBe64(original.at(original.L2EntryOffset(59)), qcow2::EncodeL2Normal(65 * cs, true));
  for (uint64_t c : {64u, 65u}) qcow2::SetRefcount(original.at(64 * cs), 6, c - 64, 1);
  original.SetRefcount(9, 0);
  original.SetRefcount(30, 0);
  Image one_image = original;
  const CheckRun one = Check(one_image, abi::CheckRepair::kAll);
  ASSERT_TRUE(one.ok);
  ASSERT_EQ(one.findings.Count(abi::FindingKind::kRebuilding), 1u);
  const CheckRun after = Check(one_image);
  EXPECT_EQ(after.result.corruptions + after.result.leaks, 0u);
  const uint64_t table = base::LoadBe64(one_image.at(48));
  EXPECT_NE(base::LoadBe64(one_image.at(table + 8)), 0u);  // a second block
  for (uint64_t per_pass : {1u, 5u, 16u, 64u}) {
    Image image = original;
    const CheckRun many = Check(image, abi::CheckRepair::kAll, per_pass);
    ASSERT_TRUE(many.ok);
    EXPECT_TRUE(image.file.bytes == one_image.file.bytes) << per_pass;
    ExpectSamePrinted(many.findings, one.findings, "per_pass " + std::to_string(per_pass));
  }
}

// A snapshot table in cluster 7 (appended, refcount 1; zeroed: one entry without extra data)
// that the header says holds `count` entries. Returns its offset.
uint64_t AddSnapshotTable(Image& image, uint32_t count) {
  const uint64_t table = 7 * image.cs();
  image.file.bytes.resize(table + image.cs());
  image.SetRefcount(7, 1);
  base::StoreBe32(image.at(60), count);
  base::StoreBe64(image.at(64), table);
  return table;
}

TEST(Qcow2Check, MissingSnapshotEntriesAreIncompleteAndTheTableIsRewrittenFirst) {
  Image image(16, 4, 2);
  // A table of one entry without extra data; the header counts three.
  const uint64_t table = AddSnapshotTable(image, 3);
  CheckRun run = Check(image);
  EXPECT_EQ(run.findings.Count(abi::FindingKind::kSnapshotIncomplete), 3u);
  EXPECT_EQ(run.result.corruptions, 3u);
  image.file.writes.clear();
  run = Check(image, abi::CheckRepair::kAll);
  EXPECT_EQ(run.result.corruptions_fixed, 3u);
  EXPECT_EQ(run.result.corruptions + run.result.leaks, 0u);
  // The new table (the first free cluster), its refcount, the header's count and offset, then
  // the old table's refcount, then its cluster zeroed.
  const uint64_t moved = base::LoadBe64(image.at(64));
  ASSERT_EQ(moved, 8 * image.cs());
  EXPECT_EQ(base::LoadBe32(image.at(60)), 3u);
  std::vector<uint64_t> order;
  for (const Write& w : image.file.writes) order.push_back(w.offset);
  ASSERT_GE(order.size(), 5u);
  EXPECT_EQ(order[0], moved);
  EXPECT_EQ(order[1], 2 * image.cs());
  EXPECT_EQ(order[2], 60u);
  EXPECT_EQ(order[3], 2 * image.cs());
  EXPECT_EQ(order[4], table);
  // Each entry as qemu writes it: 24 bytes of extra data, the image's size, no icount.
  EXPECT_EQ(base::LoadBe32(image.at(moved + 36)), 24u);
  EXPECT_EQ(base::LoadBe64(image.at(moved + 48)), base::LoadBe64(image.at(24)));
  EXPECT_EQ(base::LoadBe64(image.at(moved + 56)), ~uint64_t{0});
  EXPECT_EQ(base::LoadBe32(image.at(moved + 64 + 36)), 24u);
  const CheckRun after = Check(image);
  EXPECT_EQ(after.result.corruptions + after.result.leaks, 0u);
}

TEST(Qcow2Check, OversizedSnapshotExtraDataFailsTheCheckUnlessRepaired) {
  Image image(16, 4, 2);
  const uint64_t table = AddSnapshotTable(image, 1);
  base::StoreBe32(image.at(table + 36), 2000);
  CheckRun run = Check(image);
  EXPECT_EQ(run.findings.Count(abi::FindingKind::kSnapshotExtraTooLarge), 1u);
  EXPECT_EQ(run.result.failure, static_cast<uint32_t>(abi::CheckFailure::kFileTooLarge));
  run = Check(image, abi::CheckRepair::kAll);
  EXPECT_EQ(run.result.failure, static_cast<uint32_t>(abi::CheckFailure::kNone));
  EXPECT_EQ(run.result.corruptions_fixed, 1u);
  const uint64_t moved = base::LoadBe64(image.at(64));
  EXPECT_EQ(base::LoadBe32(image.at(moved + 36)), 1024u);
  const CheckRun after = Check(image);
  EXPECT_EQ(after.result.corruptions + after.result.leaks, 0u);
}

TEST(Qcow2Check, HostileTablesStayBounded) {
  Image image(9, 4, 2);
  // An L1 of qemu's maximum size far past the end of the file, and a huge snapshot count.
  base::StoreBe32(image.at(36), 4u << 20);
  base::StoreBe64(image.at(40), 1ull << 40);
  CheckRun run = Check(image);
  EXPECT_TRUE(run.ok);
  EXPECT_GE(run.findings.Count(abi::FindingKind::kRegionPastEof), 1u);
}

TEST(Qcow2Check, RandomCorruptionNeverHangsOrCrashes) {
  std::mt19937_64 rng(42);
  for (int iteration = 0; iteration < 300; ++iteration) {
    Image image(9, static_cast<uint32_t>(iteration % 7), 3);
    const size_t flips = 1 + rng() % 16;
    for (size_t i = 0; i < flips; ++i) {
      const size_t at = rng() % image.file.bytes.size();
      image.file.bytes[at] = static_cast<uint8_t>(rng());
    }
    const abi::CheckRepair repair = static_cast<abi::CheckRepair>(iteration % 3);
    const CheckRun run = Check(image, repair);
    if (run.ok) {
      EXPECT_EQ(run.result.magic, abi::kCheckResultMagic);
      EXPECT_LE(run.result.fragmented_clusters, run.result.allocated_clusters);
    }
  }
}

}  // namespace
}  // namespace instar::check
