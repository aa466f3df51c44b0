#include "crates/resize/vmdk_split.h"

#include <cstring>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/endian.h"
#include "crates/vmdk/sparse_header.h"
#include "gtest/gtest.h"

namespace instar::resize {
namespace {

TEST(VmdkSplit, FillsTheLastExtentThenAddsSplitSizedOnes) {
  SplitGrowth g;
  // 5 GiB (2 + 2 + 1) to 5.5 GiB: within the last extent.
  ASSERT_TRUE(PlanSplitGrowth(10485760, 11534336, 2097152, 60, &g));
  EXPECT_EQ(g.last_extent_sectors, 3145728u);
  EXPECT_EQ(g.new_extents, 0u);
  // To 10 GiB + 1 sector: the last extent to 2 GiB, then 2 GiB, 2 GiB and one sector.
  ASSERT_TRUE(PlanSplitGrowth(10485760, 20971521, 2097152, 60, &g));
  EXPECT_EQ(g.last_extent_sectors, kSplitExtentSectors);
  EXPECT_EQ(g.new_extents, 3u);
  EXPECT_EQ(NewExtentSectors(g, 0), kSplitExtentSectors);
  EXPECT_EQ(NewExtentSectors(g, 1), kSplitExtentSectors);
  EXPECT_EQ(NewExtentSectors(g, 2), 1u);
  // A last extent already larger than the split (not qemu's layout) does not grow.
  ASSERT_TRUE(PlanSplitGrowth(8388608, 8388609, 8388608, 60, &g));
  EXPECT_EQ(g.last_extent_sectors, 8388608u);
  EXPECT_EQ(g.new_extents, 1u);
  EXPECT_EQ(g.final_extent_sectors, 1u);
  EXPECT_FALSE(PlanSplitGrowth(4194304, 4194304ull * 5, 4194304, 3, &g));
}

struct Memory {
  std::vector<uint8_t> bytes;
  static bool Apply(void* self, const image_write::Step& step) {
    auto* m = static_cast<Memory*>(self);
    if (step.offset + step.length > m->bytes.size()) m->bytes.resize(step.offset + step.length);
    if (step.kind == image_write::StepKind::kZero) {
      std::memset(m->bytes.data() + step.offset, 0, step.length);
    } else if (step.kind == image_write::StepKind::kWrite) {
      std::memcpy(m->bytes.data() + step.offset, step.bytes, step.length);
    } else {
      return false;
    }
    return true;
  }
};

TEST(VmdkSplit, NewExtentHasQemuImgCreatesLayout) {
  std::vector<uint8_t> scratch(1 << 16);
  base::Arena arena(scratch.data(), scratch.size());
  Memory file;
  auto size = PlanNewSparseExtent(kSplitExtentSectors, arena,
                                  image_write::StepSink{&file, &Memory::Apply});
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size.value(), 327680u);
  ASSERT_EQ(file.bytes.size(), 327680u);
  auto h = vmdk::ParseSparseHeader(base::ByteView(file.bytes.data(), 512), file.bytes.size());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.value().capacity_sectors, kSplitExtentSectors);
  EXPECT_EQ(h.value().rgd_offset_sectors, 21u);
  EXPECT_EQ(h.value().gd_offset_sectors, 278u);
  EXPECT_EQ(h.value().overhead_sectors, 640u);
  EXPECT_EQ(base::LoadLe32(file.bytes.data() + 21 * 512), 22u);
  EXPECT_EQ(base::LoadLe32(file.bytes.data() + 278 * 512 + 63 * 4), 279u + 63 * 4);
  EXPECT_EQ(base::LoadLe32(file.bytes.data() + 278 * 512 + 64 * 4), 0u);
  EXPECT_FALSE(PlanNewSparseExtent(kSplitExtentSectors + 1, arena, image_write::StepSink{}).ok());
}

}  // namespace
}  // namespace instar::resize
