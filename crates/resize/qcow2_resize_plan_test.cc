// The qcow2 grow and shrink planners on images built in memory. Every test replays the plan
// one step at a time and, after each step (a crash at that point), recounts every reference
// the way `qemu-img check` does: no cluster may ever be referenced more often than its
// refcount says (leaks are allowed), and the finished image must be exactly consistent.
#include <cstring>
#include <map>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/endian.h"
#include "crates/qcow2/entries.h"
#include "crates/resize/qcow2_grow.h"
#include "crates/image_write/qcow2_image.h"
#include "crates/resize/qcow2_preallocate.h"
#include "crates/resize/qcow2_shrink.h"
#include "crates/image_write/step.h"
#include "gtest/gtest.h"

namespace instar::resize {

using image_write::ImageReader;
using image_write::OpenQcow2;
using image_write::Phase;
using image_write::PlanError;
using image_write::Step;
using image_write::StepKind;
using image_write::StepSink;
using image_write::kHeaderRefcountTableOffset;
using image_write::kHeaderSizeOffset;
namespace {

using Bytes = std::vector<uint8_t>;

void Put64(Bytes& b, uint64_t off, uint64_t v) {
  if (b.size() < off + 8) b.resize(off + 8);
  base::StoreBe64(b.data() + off, v);
}
void Put32(Bytes& b, uint64_t off, uint32_t v) {
  if (b.size() < off + 4) b.resize(off + 4);
  base::StoreBe32(b.data() + off, v);
}
uint64_t Get64(const Bytes& b, uint64_t off) {
  return off + 8 <= b.size() ? base::LoadBe64(b.data() + off) : 0;
}

struct ImageSpec {
  uint32_t cluster_bits = 16;
  uint32_t refcount_order = 4;
  uint64_t size = 64 << 20;
  std::vector<uint64_t> data_at;  // guest offsets to allocate one data cluster for
};

// A v3 image: header, refcount table (1 cluster), refcount block 0, L1, then per data cluster
// its L2 table (when new) and the cluster itself, every refcount 1.
Bytes BuildImage(const ImageSpec& spec) {
  const uint64_t cs = 1ull << spec.cluster_bits;
  Bytes img(cs, 0);
  const uint64_t l2_entries = cs / 8;
  const uint64_t l1_size = (spec.size + cs * l2_entries - 1) / (cs * l2_entries);
  const uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
  Put32(img, 0, qcow2::kMagic);
  Put32(img, 4, 3);
  Put32(img, 20, spec.cluster_bits);
  Put64(img, 24, spec.size);
  Put32(img, 36, static_cast<uint32_t>(l1_size));
  Put64(img, 40, 3 * cs);
  Put64(img, 48, cs);
  Put32(img, 56, 1);
  Put32(img, 96, spec.refcount_order);
  Put32(img, 100, 104);
  uint64_t next = 3 + l1_clusters;
  std::map<uint64_t, uint64_t> l2_of;  // L1 index -> L2 cluster
  for (uint64_t guest : spec.data_at) {
    const uint64_t gc = guest / cs, l1i = gc / l2_entries;
    if (!l2_of.count(l1i)) {
      l2_of[l1i] = next++;
      Put64(img, 3 * cs + 8 * l1i, (l2_of[l1i] * cs) | qcow2::kCopiedFlag);
    }
    const uint64_t data = next++;
    Put64(img, l2_of[l1i] * cs + 8 * (gc % l2_entries), (data * cs) | qcow2::kCopiedFlag);
  }
  img.resize(next * cs, 0);
  Put64(img, cs, 2 * cs);
  qcow2::Geometry g;
  g.cluster_size = cs;
  g.refcount_order = spec.refcount_order;
  for (uint64_t c = 0; c < next; ++c) qcow2::SetRefcount(img.data() + 2 * cs, spec.refcount_order, c, 1);
  return img;
}

struct Counts {
  uint64_t corruptions = 0;
  uint64_t leaks = 0;
};

// References vs refcounts, as qemu-img check counts them (active L1 only: no snapshots here).
Counts Check(const Bytes& img) {
  Counts out;
  const uint32_t cb = static_cast<uint32_t>(base::LoadBe32(img.data() + 20));
  const uint64_t cs = 1ull << cb;
  const uint32_t order = base::LoadBe32(img.data() + 96);
  const uint64_t per_block = (cs * 8) >> order;
  const uint64_t l1_size = base::LoadBe32(img.data() + 36);
  const uint64_t l1_off = Get64(img, 40);
  const uint64_t rt_off = Get64(img, 48);
  const uint64_t rt_clusters = base::LoadBe32(img.data() + 56);
  std::map<uint64_t, uint64_t> refs;
  refs[0]++;
  for (uint64_t c = 0; c < rt_clusters; ++c) refs[rt_off / cs + c]++;
  for (uint64_t i = 0; i < rt_clusters * cs / 8; ++i) {
    const uint64_t b = Get64(img, rt_off + 8 * i) & qcow2::kRefcountTableOffsetMask;
    if (b) refs[b / cs]++;
  }
  for (uint64_t c = 0; c < (l1_size * 8 + cs - 1) / cs; ++c) refs[l1_off / cs + c]++;
  for (uint64_t i = 0; i < l1_size; ++i) {
    const uint64_t l2 = Get64(img, l1_off + 8 * i) & qcow2::kOffsetMask;
    if (!l2) continue;
    refs[l2 / cs]++;
    for (uint64_t j = 0; j < cs / 8; ++j) {
      const uint64_t d = Get64(img, l2 + 8 * j) & qcow2::kOffsetMask;
      if (d) refs[d / cs]++;
    }
  }
  std::map<uint64_t, uint64_t> counted;
  for (uint64_t i = 0; i < rt_clusters * cs / 8; ++i) {
    const uint64_t b = Get64(img, rt_off + 8 * i) & qcow2::kRefcountTableOffsetMask;
    if (!b || b + cs > img.size()) continue;
    for (uint64_t k = 0; k < per_block; ++k) {
      const uint64_t r = qcow2::GetRefcount(img.data() + b, order, k);
      if (r) counted[i * per_block + k] = r;
    }
  }
  for (auto [c, n] : refs) {
    if (counted[c] < n) ++out.corruptions;
  }
  for (auto [c, n] : counted) {
    if (n > refs[c]) ++out.leaks;
  }
  return out;
}

bool ReadBytes(void* ctx, uint64_t off, uint64_t len, uint8_t* out) {
  const Bytes& b = *static_cast<const Bytes*>(ctx);
  if (off > b.size() || len > b.size() - off) return false;
  std::memcpy(out, b.data() + off, len);
  return true;
}

struct Recorded {
  Step step;
  Bytes bytes;
};

bool Record(void* ctx, const Step& s) {
  auto& steps = *static_cast<std::vector<Recorded>*>(ctx);
  Recorded r{s, {}};
  if (s.kind == StepKind::kWrite) r.bytes.assign(s.bytes, s.bytes + s.length);
  r.step.bytes = nullptr;
  steps.push_back(std::move(r));
  return true;
}

void Apply(Bytes& img, const Recorded& r) {
  const Step& s = r.step;
  if (s.kind == StepKind::kSetSize) {
    img.resize(s.length);
    return;
  }
  if (img.size() < s.offset + s.length) img.resize(s.offset + s.length, 0);
  switch (s.kind) {
    case StepKind::kWrite: std::memcpy(img.data() + s.offset, r.bytes.data(), s.length); break;
    case StepKind::kZero: std::memset(img.data() + s.offset, 0, s.length); break;
    case StepKind::kCopy: std::memmove(img.data() + s.offset, img.data() + s.source, s.length); break;
    case StepKind::kSetSize: break;
  }
}

struct Planned {
  std::vector<Recorded> steps;
  PlanError error = PlanError::kIoError;
  bool ok = false;
};

Planned Plan(const Bytes& img, uint64_t new_size, bool grow) {
  static std::vector<uint8_t> scratch(12u << 20);
  base::Arena arena(scratch.data(), scratch.size());
  ImageReader reader{const_cast<Bytes*>(&img), ReadBytes, img.size()};
  const uint64_t cs = 1ull << base::LoadBe32(img.data() + 20);
  auto image = OpenQcow2(reader, base::ByteView(img.data(), std::min<uint64_t>(cs, img.size())), arena);
  EXPECT_TRUE(image.ok());
  Planned p;
  StepSink sink{&p.steps, Record};
  if (grow) {
    auto r = PlanQcow2Grow(image.value(), new_size, new_size, reader, arena, sink);
    p.ok = r.ok();
    if (!r.ok()) p.error = r.error().code;
  } else {
    auto r = PlanQcow2Shrink(image.value(), new_size, reader, arena, sink);
    p.ok = r.ok();
    if (!r.ok()) p.error = r.error().code;
  }
  return p;
}

// Replays `plan` on `img` step by step, checking consistency after each.
Bytes ReplayChecked(Bytes img, const Planned& plan) {
  EXPECT_EQ(Check(img).corruptions, 0u);
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    Apply(img, plan.steps[i]);
    EXPECT_EQ(Check(img).corruptions, 0u) << "after step " << i;
  }
  const Counts end = Check(img);
  EXPECT_EQ(end.corruptions, 0u);
  EXPECT_EQ(end.leaks, 0u);
  return img;
}

int PhaseRank(Phase p) { return static_cast<int>(p); }

TEST(Qcow2Grow, HeaderOnlyWhenL1IsLargeEnough) {
  const Bytes img = BuildImage({});
  const Planned p = Plan(img, 100 << 20, true);
  ASSERT_TRUE(p.ok);
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.steps[0].step.phase, Phase::kHeader);
  EXPECT_EQ(p.steps[0].step.offset, kHeaderSizeOffset);
  const Bytes out = ReplayChecked(img, p);
  EXPECT_EQ(Get64(out, 24), 100u << 20);
}

TEST(Qcow2Grow, RelocatesL1AndFreesTheOldOne) {
  ImageSpec spec;
  spec.data_at = {0, (64 << 20) - 65536};
  const Bytes img = BuildImage(spec);
  const uint64_t new_size = 8ull << 40;  // 16384 L1 entries: two clusters
  const Planned p = Plan(img, new_size, true);
  ASSERT_TRUE(p.ok);
  const Bytes out = ReplayChecked(img, p);
  EXPECT_EQ(Get64(out, 24), new_size);
  EXPECT_EQ(base::LoadBe32(out.data() + 36), new_size / (512ull << 20));
  EXPECT_NE(Get64(out, 40), 3u * 65536);
  // Old L1 entries were carried over.
  EXPECT_EQ(Get64(out, Get64(out, 40)), Get64(img, 3 * 65536));
}

TEST(Qcow2Grow, EveryRefcountWidthAndClusterSize) {
  for (uint32_t cb : {9u, 12u, 16u, 21u}) {
    for (uint32_t order = 0; order <= 6; ++order) {
      ImageSpec spec;
      spec.cluster_bits = cb;
      spec.refcount_order = order;
      spec.size = 1 << 20;
      spec.data_at = {0};
      const Bytes img = BuildImage(spec);
      // Large enough to need more L1 clusters, refcount blocks and (for small clusters) a
      // larger refcount table.
      const uint64_t new_size = (1ull << (2 * cb - 3)) * (qcow2::kMaxL1Bytes / 16);
      const Planned p = Plan(img, new_size, true);
      ASSERT_TRUE(p.ok) << cb << "/" << order << " error " << static_cast<int>(p.error);
      const Bytes out = ReplayChecked(img, p);
      EXPECT_EQ(Get64(out, 24), new_size);
    }
  }
}

TEST(Qcow2Grow, OrderingRefcountsBeforeHeaderBeforeFrees) {
  ImageSpec spec;
  spec.cluster_bits = 9;
  spec.refcount_order = 6;
  spec.size = 1 << 20;
  const Planned p = Plan(BuildImage(spec), 1ull << 34, true);
  ASSERT_TRUE(p.ok);
  bool header_seen = false, relocated_table = false;
  for (const Recorded& r : p.steps) {
    if (r.step.phase == Phase::kHeader && r.step.offset == kHeaderRefcountTableOffset) {
      relocated_table = true;
    }
    if (r.step.phase == Phase::kHeader && r.step.offset == kHeaderSizeOffset) header_seen = true;
    if (r.step.phase == Phase::kRefcountIncrement || r.step.phase == Phase::kNewMetadata) {
      EXPECT_FALSE(header_seen);
    }
    if (r.step.phase == Phase::kRefcountDecrement) {
      EXPECT_TRUE(header_seen);
    }
  }
  EXPECT_TRUE(relocated_table);
  EXPECT_EQ(PhaseRank(p.steps.front().step.phase), PhaseRank(Phase::kRefcountIncrement));
}

TEST(Qcow2Grow, L1TooLarge) {
  const Planned p = Plan(BuildImage({}), 1ull << 60, true);
  ASSERT_FALSE(p.ok);
  EXPECT_EQ(p.error, PlanError::kL1TooLarge);
  EXPECT_TRUE(p.steps.empty());
}

// Grows, then preallocates the new range of the grown image; both replayed step by step.
TEST(Qcow2Preallocate, EveryNewClusterGetsAHostCluster) {
  for (uint32_t cb : {9u, 12u, 16u}) {
    for (uint32_t order : {0u, 4u, 6u}) {
      ImageSpec spec;
      spec.cluster_bits = cb;
      spec.refcount_order = order;
      spec.size = 1000 << 10;
      spec.data_at = {0};
      const Bytes img = BuildImage(spec);
      const uint64_t new_size = 3 << 20;
      const Bytes grown = ReplayChecked(img, Plan(img, new_size, true));
      static std::vector<uint8_t> scratch(12u << 20);
      base::Arena arena(scratch.data(), scratch.size());
      ImageReader reader{const_cast<Bytes*>(&grown), ReadBytes, grown.size()};
      const uint64_t cs = 1ull << cb;
      auto image = OpenQcow2(reader, base::ByteView(grown.data(), cs), arena);
      ASSERT_TRUE(image.ok());
      Planned p;
      StepSink sink{&p.steps, Record};
      auto r = PlanQcow2Preallocate(image.value(), spec.size, new_size, FillMode::kZeroedData,
                                    reader, arena, sink);
      ASSERT_TRUE(r.ok()) << cb << "/" << order << " " << static_cast<int>(r.error().code);
      // Every cluster from the one holding the old end, except the one already there.
      const uint64_t first = spec.size / cs;
      const uint64_t end = (new_size + cs - 1) / cs;
      EXPECT_EQ(r.value().data_clusters, end - first - (first == 0 ? 1 : 0)) << cb << "/" << order;
      ReplayChecked(grown, p);
    }
  }
}

TEST(Qcow2Shrink, DropsTablesAndCutsTheFile) {
  ImageSpec spec;
  spec.size = 2ull << 30;
  spec.data_at = {0, 1 << 20, 700 << 20, (1ull << 30) + 4096, (2ull << 30) - 65536};
  const Bytes img = BuildImage(spec);
  const Planned p = Plan(img, 600 << 20, false);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.steps.front().step.phase, Phase::kHeader);
  const Bytes out = ReplayChecked(img, p);
  EXPECT_EQ(Get64(out, 24), 600u << 20);
  EXPECT_LT(out.size(), img.size());
}

TEST(Qcow2Shrink, CutsThroughAnL2Table) {
  ImageSpec spec;
  spec.cluster_bits = 12;
  spec.size = 16 << 20;
  spec.data_at = {0, 4096, 8192, 12288, 1 << 20};
  const Bytes img = BuildImage(spec);
  const Planned p = Plan(img, 8192, false);
  ASSERT_TRUE(p.ok);
  const Bytes out = ReplayChecked(img, p);
  // The clusters at 8192 and beyond lost their entries.
  const uint64_t l2 = Get64(out, Get64(out, 40)) & qcow2::kOffsetMask;
  EXPECT_NE(Get64(out, l2 + 8), 0u);
  EXPECT_EQ(Get64(out, l2 + 16), 0u);
  EXPECT_EQ(Get64(out, l2 + 24), 0u);
}

TEST(Qcow2Shrink, EveryRefcountWidth) {
  for (uint32_t order = 0; order <= 6; ++order) {
    ImageSpec spec;
    spec.cluster_bits = 9;
    spec.refcount_order = order;
    spec.size = 4 << 20;
    spec.data_at = {0, 512 * 100, 1 << 20, 3 << 20};
    const Bytes img = BuildImage(spec);
    const Planned p = Plan(img, 512 * 101, false);
    ASSERT_TRUE(p.ok) << order;
    ReplayChecked(img, p);
  }
}

TEST(Qcow2Shrink, CorruptL2PointerIsRefusedBeforeWriting) {
  ImageSpec spec;
  spec.size = 2ull << 30;
  spec.data_at = {1ull << 30};
  Bytes img = BuildImage(spec);
  // Point the L1 entry for 1 GiB past the end of the file.
  Put64(img, 3 * 65536 + 8 * 2, (img.size() + 65536 * 10) | qcow2::kCopiedFlag);
  static std::vector<uint8_t> scratch(12u << 20);
  base::Arena arena(scratch.data(), scratch.size());
  ImageReader reader{&img, ReadBytes, img.size()};
  auto image = OpenQcow2(reader, base::ByteView(img.data(), 65536), arena);
  ASSERT_TRUE(image.ok());
  const StepSink dry;
  auto r = PlanQcow2Shrink(image.value(), 1 << 20, reader, arena, dry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, PlanError::kCorruptL1);
}

TEST(Qcow2Open, RefusesTablesOutsideTheFile) {
  Bytes img = BuildImage({});
  Put64(img, 48, 1ull << 40);
  static std::vector<uint8_t> scratch(1u << 20);
  base::Arena arena(scratch.data(), scratch.size());
  ImageReader reader{&img, ReadBytes, img.size()};
  auto image = OpenQcow2(reader, base::ByteView(img.data(), 65536), arena);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.error().code.plan_error, PlanError::kCorruptRefcountTable);
}

}  // namespace
}  // namespace instar::resize
