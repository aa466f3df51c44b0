// Chain: reads from the topmost allocating layer, zeros past a short lower layer (allocated
// there, as qemu's block status says), zero clusters hiding what lies below, and Locate
// over layer ranges.
#include "crates/chain_read/chain.h"

#include <gtest/gtest.h>

#include <vector>

#include "crates/chain_read/testing/test_images.h"

namespace instar::chain_read {
namespace {

using testing::Bytes;
using testing::Qcow2Image;
using testing::ReaderOf;

constexpr uint64_t kCopied = 1ull << 63;
constexpr uint64_t kC = 512;  // cluster size of the test images

class ChainTest : public ::testing::Test {
 protected:
  ChainTest() {
    // top (16 clusters): data 0xA1 at 1, zero at 2, data 0xA2 at 12.
    top_.Map(1, top_.AllocData(1, 0xA1) | kCopied);
    top_.Map(2, 1);
    top_.Map(12, top_.AllocData(1, 0xA2) | kCopied);
    // mid (8 clusters, shorter than top): data 0xB1 at 0-2, 5.
    const uint64_t d = mid_.AllocData(3, 0xB1);
    for (uint64_t c = 0; c < 3; ++c) mid_.Map(c, (d + c * kC) | kCopied);
    mid_.Map(5, mid_.AllocData(1, 0xB2) | kCopied);
    // base: raw, 20 clusters of 0xC1 (longer than top).
    base_.assign(20 * kC, 0xC1);
    for (auto [bytes, format] : {std::pair{&top_.bytes, ImageFormat::kQcow2},
                                 std::pair{&mid_.bytes, ImageFormat::kQcow2},
                                 std::pair{&base_, ImageFormat::kRaw}}) {
      auto layer = Layer::Open(format, ReaderOf(*bytes), arena_);
      EXPECT_TRUE(layer.ok());
      layers_.push_back(layer.value());
    }
    auto chain = Chain::Of(layers_.data(), 3);
    EXPECT_TRUE(chain.ok());
    chain_ = chain.value();
  }

  std::vector<uint8_t> memory_ = std::vector<uint8_t>(4u << 20);
  base::Arena arena_{memory_.data(), memory_.size()};
  Qcow2Image top_{9, 16 * kC};
  Qcow2Image mid_{9, 8 * kC};
  Bytes base_;
  std::vector<Layer*> layers_;
  Chain chain_;
};

TEST_F(ChainTest, ReadsWhatQemuReads) {
  Bytes out(20 * kC, 0xEE);
  ASSERT_TRUE(chain_.Read(0, out.size(), out.data()).ok());
  // Per cluster: 0 mid, 1 top, 2 top zero, 3-4 base, 5 mid, 6-7 base, 8-11 past mid's end:
  // zeros, 12 top, 13-15 zeros, 16-19 past the top's size: zeros.
  const uint8_t want[20] = {0xB1, 0xA1, 0, 0xC1, 0xC1, 0xB2, 0xC1, 0xC1, 0, 0,
                            0,    0,    0xA2, 0, 0, 0, 0, 0, 0, 0};
  for (uint64_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], want[i / kC]) << i;
}

TEST_F(ChainTest, LocateNamesTheDecidingLayer) {
  struct Want {
    uint32_t first, last;
    uint64_t offset;
    uint32_t layer;
    ExtentKind kind;
    uint64_t length;
  };
  for (const Want& w : {
           Want{0, 3, 0, 1, ExtentKind::kData, kC},
           Want{0, 3, kC, 0, ExtentKind::kData, kC},
           Want{0, 3, 2 * kC, 0, ExtentKind::kZero, kC},
           Want{0, 3, 3 * kC, 2, ExtentKind::kData, 2 * kC},
           Want{0, 3, 8 * kC, 1, ExtentKind::kZero, 4 * kC},  // past mid's end
           Want{0, 1, 3 * kC, 1, ExtentKind::kUnallocated, 9 * kC},  // top only
           Want{0, 2, 3 * kC, 2, ExtentKind::kUnallocated, 2 * kC},
           Want{1, 3, 2 * kC, 1, ExtentKind::kData, kC},
           Want{2, 3, 0, 2, ExtentKind::kData, 20 * kC},
       }) {
    auto r = chain_.Locate(w.first, w.last, w.offset, 100 * kC);
    ASSERT_TRUE(r.ok()) << w.offset;
    EXPECT_EQ(r.value().layer, w.layer) << w.first << ":" << w.last << " @" << w.offset;
    EXPECT_EQ(r.value().extent.kind, w.kind) << w.first << ":" << w.last << " @" << w.offset;
    EXPECT_EQ(r.value().extent.length, w.length) << w.first << ":" << w.last << " @" << w.offset;
  }
  EXPECT_EQ(chain_.Locate(1, 3, 8 * kC, 1).error().code, ReadError::kOutOfRange);
  EXPECT_EQ(chain_.Locate(0, 4, 0, 1).error().code, ReadError::kOutOfRange);
  EXPECT_EQ(chain_.Locate(0, 3, 0, 0).error().code, ReadError::kOutOfRange);
}

TEST_F(ChainTest, SubChainsAndLimits) {
  auto lower = Chain::Of(layers_.data() + 1, 2);
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(lower.value().virtual_size(), 8 * kC);
  Bytes out(10 * kC, 0xEE);
  ASSERT_TRUE(lower.value().Read(0, out.size(), out.data()).ok());
  EXPECT_EQ(out[2 * kC], 0xB1);
  EXPECT_EQ(out[3 * kC], 0xC1);
  EXPECT_EQ(out[9 * kC], 0);  // past its virtual size
  EXPECT_EQ(Chain::Of(layers_.data(), 0).error().code, ReadError::kTooManyLayers);
  std::vector<Layer*> many(kMaxLayers + 1, layers_[0]);
  EXPECT_EQ(Chain::Of(many.data(), kMaxLayers + 1).error().code, ReadError::kTooManyLayers);
  EXPECT_TRUE(Chain::Of(many.data(), kMaxLayers).ok());
}

}  // namespace
}  // namespace instar::chain_read
