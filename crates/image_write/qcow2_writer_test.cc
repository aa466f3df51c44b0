// Qcow2Writer on images built in memory: every request's steps are replayed one at a time
// and, after each (a crash there), references are recounted the way `qemu-img check` does; no
// cluster may be referenced more often than its refcount says, and after the flush nothing
// leaks. Guest content is read back through the tables. Also: Map coherence before a flush,
// copy-on-write of shared clusters and tables, one data step per contiguous run, hostile
// entries, the table cache and the hole search.
#include "crates/image_write/qcow2_writer.h"

#include <cstring>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/endian.h"
#include "crates/image_write/cluster_allocator.h"
#include "crates/image_write/table_cache.h"
#include "crates/image_write/testing/qcow2_test_image.h"
#include "crates/qcow2/entries.h"
#include "gtest/gtest.h"

namespace instar::image_write {
namespace {

using testing::Apply;
using testing::BuildImage;
using testing::Bytes;
using testing::Check;
using testing::Get64;
using testing::ImageSpec;
using testing::Put64;
using testing::ReadBytes;
using testing::Record;
using testing::Recorded;

uint64_t ClusterSize(const Bytes& img) { return 1ull << base::LoadBe32(img.data() + 20); }

// The host offset of guest cluster `c` (0: unallocated or zero), read through the tables.
uint64_t HostOf(const Bytes& img, uint64_t c, uint64_t* raw_entry = nullptr) {
  const uint64_t cs = ClusterSize(img), per_l2 = cs / 8;
  const uint64_t l2 = Get64(img, Get64(img, 40) + 8 * (c / per_l2)) & qcow2::kOffsetMask;
  if (l2 == 0) return 0;
  const uint64_t entry = Get64(img, l2 + 8 * (c % per_l2));
  if (raw_entry) *raw_entry = entry;
  return entry & qcow2::kZeroFlag ? 0 : entry & qcow2::kOffsetMask;
}

// The guest bytes of cluster `c`.
Bytes GuestCluster(const Bytes& img, uint64_t c) {
  const uint64_t cs = ClusterSize(img);
  Bytes out(cs, 0);
  const uint64_t host = HostOf(img, c);
  if (host != 0 && host < img.size()) {
    std::memcpy(out.data(), img.data() + host, std::min(cs, img.size() - host));
  }
  return out;
}

void SetRefcount(Bytes& img, uint64_t cluster, uint64_t value) {
  const uint32_t order = base::LoadBe32(img.data() + 96);
  const uint64_t block = Get64(img, Get64(img, 48)) & qcow2::kRefcountTableOffsetMask;
  qcow2::SetRefcount(img.data() + block, order, cluster, value);
}

// A writer over a copy of an image; each step is applied as it is emitted (the writer reads
// back what it evicted) and references are recounted after it.
struct Session {
  Bytes img;
  std::vector<Recorded> steps;  // every step, for inspection
  std::vector<uint8_t> memory = std::vector<uint8_t>(12u << 20);
  base::Arena arena{memory.data(), memory.size()};
  Qcow2Writer* writer = nullptr;

  static bool Emit(void* ctx, const Step& step) {
    auto* self = static_cast<Session*>(ctx);
    Record(&self->steps, step);
    Apply(self->img, self->steps.back());
    EXPECT_EQ(Check(self->img).corruptions, 0u) << "after step " << self->steps.size() - 1;
    return true;
  }

  explicit Session(Bytes image, Qcow2WriterLimits limits = {}) : img(std::move(image)) {
    const ImageReader reader{&img, ReadBytes, img.size()};
    auto opened = Qcow2Writer::Open(reader, StepSink{this, &Session::Emit}, arena, limits);
    EXPECT_TRUE(opened.ok()) << static_cast<int>(opened.error().code);
    if (opened.ok()) writer = opened.value();
  }
};

Bytes Pattern(uint64_t clusters, uint64_t cs, uint8_t seed) {
  Bytes b(clusters * cs);
  for (uint64_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(seed + i / cs * 7 + i % 251);
  return b;
}

TEST(Qcow2Writer, EveryClusterSizeAndRefcountWidthStaysConsistentAfterEachStep) {
  for (uint32_t cb : {9u, 12u, 16u}) {
    for (uint32_t order : {0u, 4u, 6u}) {
      ImageSpec spec;
      spec.cluster_bits = cb;
      spec.refcount_order = order;
      const uint64_t cs = 1ull << cb;
      spec.size = 2 * (cs / 8) * cs;  // two L2 tables' worth
      spec.data_at = {0, cs, 100 * cs};
      Session s(BuildImage(spec));
      ASSERT_NE(s.writer, nullptr);
      const uint64_t per_l2 = cs / 8;
      // Across an L2 boundary, over existing data, then zero and discard parts of it.
      const uint64_t first = per_l2 - 3, count = 7;
      const Bytes data = Pattern(count, cs, 1);
      auto written = s.writer->WriteClusters(first, count, data.data());
      ASSERT_TRUE(written.ok()) << cb << "/" << order << ": error "
                                << static_cast<int>(written.error().code) << " detail "
                                << written.error().detail;
      const Bytes head = Pattern(2, cs, 9);
      ASSERT_TRUE(s.writer->WriteClusters(0, 2, head.data()).ok());
      ASSERT_TRUE(s.writer->ZeroClusters(first + 1, 2).ok());
      ASSERT_TRUE(s.writer->DiscardClusters(first + 5, 1).ok());
      ASSERT_TRUE(s.writer->DiscardClusters(100, 1).ok());
      ASSERT_TRUE(s.writer->Flush().ok());
      EXPECT_EQ(Check(s.img).leaks, 0u) << cb << "/" << order;
      for (uint64_t k = 0; k < count; ++k) {
        const Bytes got = GuestCluster(s.img, first + k);
        if (k == 1 || k == 2 || k == 5) {
          EXPECT_EQ(got, Bytes(cs, 0)) << k;
        } else {
          EXPECT_EQ(0, std::memcmp(got.data(), data.data() + k * cs, cs)) << k;
        }
      }
      EXPECT_EQ(0, std::memcmp(GuestCluster(s.img, 1).data(), head.data() + cs, cs));
      uint64_t entry = 0;
      HostOf(s.img, first + 1, &entry);
      EXPECT_EQ(entry, qcow2::kZeroFlag);
      EXPECT_EQ(HostOf(s.img, 100), 0u);
    }
  }
}

TEST(Qcow2Writer, MapSeesPendingChanges) {
  Session s(BuildImage({}));
  const uint64_t cs = 65536;
  const Bytes data = Pattern(3, cs, 2);
  ASSERT_TRUE(s.writer->WriteClusters(10, 3, data.data()).ok());
  ASSERT_TRUE(s.writer->ZeroClusters(20, 1).ok());
  auto m = s.writer->Map(11);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value().state, ClusterState::kData);
  EXPECT_NE(m.value().host_offset, 0u);
  EXPECT_EQ(s.writer->Map(20).value().state, ClusterState::kZero);
  EXPECT_EQ(s.writer->Map(21).value().state, ClusterState::kUnallocated);
  ASSERT_TRUE(s.writer->DiscardClusters(11, 1).ok());
  EXPECT_EQ(s.writer->Map(11).value().state, ClusterState::kUnallocated);
}

TEST(Qcow2Writer, OneDataStepPerContiguousRun) {
  Session s(BuildImage({}));
  const uint64_t cs = 65536;
  const Bytes data = Pattern(100, cs, 3);
  ASSERT_TRUE(s.writer->WriteClusters(0, 100, data.data()).ok());
  EXPECT_EQ(s.writer->stats().data_steps, 1u);
  uint64_t data_writes = 0;
  for (const Recorded& r : s.steps) data_writes += r.step.phase == Phase::kData;
  EXPECT_EQ(data_writes, 1u);
  ASSERT_TRUE(s.writer->Flush().ok());
  EXPECT_EQ(Check(s.img).leaks, 0u);
}

TEST(Qcow2Writer, OverwritesInPlaceWhatOnlyTheActiveTreeReferences) {
  ImageSpec spec;
  spec.data_at = {0};
  Session s(BuildImage(spec));
  const uint64_t before = HostOf(s.img, 0);
  const Bytes data = Pattern(1, 65536, 4);
  ASSERT_TRUE(s.writer->WriteClusters(0, 1, data.data()).ok());
  ASSERT_TRUE(s.writer->Flush().ok());
  EXPECT_EQ(s.writer->stats().clusters_allocated, 0u);
  EXPECT_EQ(HostOf(s.img, 0), before);
  EXPECT_EQ(GuestCluster(s.img, 0), data);
}

TEST(Qcow2Writer, CopiesSharedClustersAndTablesOnWrite) {
  ImageSpec spec;
  spec.data_at = {0, 65536};
  Bytes img = BuildImage(spec);
  const uint64_t cs = 65536;
  const uint64_t l2 = Get64(img, 3 * cs) & qcow2::kOffsetMask;
  const uint64_t old_data = HostOf(img, 0);
  // A snapshot shares the L2 table and both data clusters (copied flags cleared, as qemu does).
  SetRefcount(img, l2 / cs, 2);
  SetRefcount(img, old_data / cs, 2);
  SetRefcount(img, HostOf(img, 1) / cs, 2);
  Put64(img, 3 * cs, l2);
  Put64(img, l2, old_data);
  Put64(img, l2 + 8, HostOf(img, 1));
  const Bytes original = img;
  Session s(img);
  const Bytes data = Pattern(1, cs, 5);
  ASSERT_TRUE(s.writer->WriteClusters(0, 1, data.data()).ok());
  ASSERT_TRUE(s.writer->Flush().ok());
  const uint64_t new_l2 = Get64(s.img, 3 * cs);
  EXPECT_NE(new_l2 & qcow2::kOffsetMask, l2);
  EXPECT_TRUE(new_l2 & qcow2::kCopiedFlag);
  EXPECT_NE(HostOf(s.img, 0), old_data);
  EXPECT_EQ(GuestCluster(s.img, 0), data);
  uint64_t entry = 0;
  HostOf(s.img, 1, &entry);
  EXPECT_FALSE(entry & qcow2::kCopiedFlag);  // still shared with the snapshot
  // The snapshot's table and data are untouched; each lost the active tree's reference.
  EXPECT_EQ(0, std::memcmp(s.img.data() + l2, original.data() + l2, cs));
  EXPECT_EQ(0, std::memcmp(s.img.data() + old_data, original.data() + old_data, cs));
  const uint32_t order = base::LoadBe32(s.img.data() + 96);
  const uint8_t* block = s.img.data() + 2 * cs;
  EXPECT_EQ(qcow2::GetRefcount(block, order, l2 / cs), 1u);
  EXPECT_EQ(qcow2::GetRefcount(block, order, old_data / cs), 1u);
}

TEST(Qcow2Writer, SmallCachesFlushInOrder) {
  ImageSpec spec;
  spec.cluster_bits = 9;
  spec.size = 8 << 20;
  Qcow2WriterLimits limits;
  limits.cache_bytes = 1;
  limits.pending_frees = 1;
  Session s(BuildImage(spec), limits);
  for (uint64_t i = 0; i < 40; ++i) {
    const Bytes data = Pattern(3, 512, static_cast<uint8_t>(i));
    ASSERT_TRUE(s.writer->WriteClusters((i * 977) % 16000, 3, data.data()).ok());
    ASSERT_TRUE(s.writer->DiscardClusters((i * 577) % 16000, 2).ok());
  }
  ASSERT_TRUE(s.writer->Flush().ok());
  EXPECT_GT(s.writer->stats().flushes, 10u);
  EXPECT_EQ(Check(s.img).leaks, 0u);
}

TEST(Qcow2Writer, HostileEntriesAreErrorsThatStick) {
  ImageSpec spec;
  spec.data_at = {0, 1 << 20};
  const Bytes good = BuildImage(spec);
  const uint64_t cs = 65536;
  const uint64_t l2 = Get64(good, 3 * cs) & qcow2::kOffsetMask;
  {
    Bytes img = good;
    Put64(img, 3 * cs, Get64(img, 3 * cs) | 1);  // reserved L1 bit
    Session s(img);
    EXPECT_EQ(s.writer->Map(0).error().code, WriteError::kCorruptL1);
    EXPECT_EQ(s.writer->Flush().error().code, WriteError::kCorruptL1);  // sticks
  }
  {
    Bytes img = good;
    Put64(img, l2, (HostOf(img, 0) + 512) | qcow2::kCopiedFlag);  // unaligned
    Session s(img);
    EXPECT_EQ(s.writer->Map(0).error().code, WriteError::kCorruptL2);
  }
  {
    Bytes img = good;
    SetRefcount(img, HostOf(img, 0) / cs, 0);  // referenced, refcount 0
    Session s(img);
    const Bytes data = Pattern(1, cs, 6);
    EXPECT_EQ(s.writer->WriteClusters(0, 1, data.data()).error().code,
              WriteError::kCorruptRefcount);
  }
  {
    Bytes img = good;
    Put64(img, l2, (3 * cs) | qcow2::kCopiedFlag);  // data cluster on the L1 table
    Session s(img);
    const Bytes data = Pattern(1, cs, 6);
    EXPECT_EQ(s.writer->WriteClusters(0, 1, data.data()).error().code, WriteError::kCorruptL2);
    EXPECT_TRUE(s.steps.empty());  // refused before anything was written
  }
  {
    Session s(good);
    EXPECT_EQ(s.writer->ZeroClusters(1023, 2).error().code, WriteError::kOutOfRange);
  }
  {
    Bytes img = good;
    Put64(img, 72, qcow2::kIncompatExtendedL2);
    std::vector<Recorded> steps;
    std::vector<uint8_t> memory(1 << 20);
    base::Arena arena(memory.data(), memory.size());
    auto opened = Qcow2Writer::Open(ImageReader{&img, ReadBytes, img.size()},
                                    StepSink{&steps, Record}, arena);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, WriteError::kExtendedL2);
  }
}

TEST(Qcow2Writer, GrowKeepsDataAndZeroesTheNewRange) {
  ImageSpec spec;
  spec.size = 1 << 20;
  spec.data_at = {0};
  Session s(BuildImage(spec));
  ASSERT_NE(s.writer, nullptr);
  const Bytes& img = s.img;
  Qcow2Writer* w = s.writer;
  ASSERT_TRUE(w->Grow(3ull << 30, true).ok());
  EXPECT_EQ(Get64(img, 24), 3ull << 30);
  EXPECT_EQ(w->guest_clusters(), (3ull << 30) / 65536);
  EXPECT_EQ(w->Map(100).value().state, ClusterState::kZero);
  EXPECT_EQ(w->Map(0).value().state, ClusterState::kData);
  const Bytes data = Pattern(2, 65536, 7);
  ASSERT_TRUE(w->WriteClusters(w->guest_clusters() - 2, 2, data.data()).ok());
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(Check(img).leaks, 0u);
  EXPECT_EQ(w->Grow(3ull << 30, false).error().code, WriteError::kNotGrowing);
}

TEST(TableCache, RecyclesCleanSlotsLeastRecentlyUsedFirst) {
  std::vector<uint8_t> memory(1 << 16);
  base::Arena arena(memory.data(), memory.size());
  TableCache cache(512, 2, arena);
  ASSERT_EQ(cache.capacity(), 2u);
  TableSlot* a = cache.Take(1);
  TableSlot* b = cache.Take(2);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(cache.Find(1), a);  // 1 is now the most recent
  TableSlot* c = cache.Take(3);
  EXPECT_EQ(c, b);
  EXPECT_EQ(cache.Find(2), nullptr);
  a->dirty = c->dirty = true;
  EXPECT_EQ(cache.Take(4), nullptr);  // never evicts a changed table
  int dirty = 0;
  cache.ForEachDirty([&](TableSlot& s) {
    s.dirty = false;
    return ++dirty > 0;
  });
  EXPECT_EQ(dirty, 2);
  EXPECT_NE(cache.Take(4), nullptr);
  cache.Clear();
  EXPECT_EQ(cache.Find(4), nullptr);
}

TEST(FindFreeRun, PassesOverHolesTooShort) {
  ImageSpec spec;
  spec.cluster_bits = 9;
  spec.size = 64 << 10;  // header, table, block, L1, one L2, then data clusters 5..24
  for (uint64_t c = 0; c < 20; ++c) spec.data_at.push_back(c * 512);
  Bytes img = BuildImage(spec);
  // Holes: one cluster at 8, three at 12..14.
  for (uint64_t c : {8u, 12u, 13u, 14u}) SetRefcount(img, c, 0);
  std::vector<uint8_t> memory(1 << 20);
  base::Arena arena(memory.data(), memory.size());
  const ImageReader reader{&img, ReadBytes, img.size()};
  auto image = OpenQcow2(reader, base::ByteView(img.data(), 512), arena);
  ASSERT_TRUE(image.ok());
  RefcountEditor editor(reader, image.value().geometry, image.value().refcount_table,
                        image.value().refcount_table_entries, arena, 4);
  uint64_t found = 0;
  auto r = FindFreeRun(image.value(), image.value().refcount_table, editor, 0, 2, &found);
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(found, 12u);
  r = FindFreeRun(image.value(), image.value().refcount_table, editor, 0, 1, &found);
  EXPECT_EQ(found, 8u);
  r = FindFreeRun(image.value(), image.value().refcount_table, editor, 13, 3, &found);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value());
}

}  // namespace
}  // namespace instar::image_write
