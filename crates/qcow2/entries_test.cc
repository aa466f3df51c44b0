#include "crates/qcow2/entries.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace instar::qcow2 {
namespace {

Geometry Geo(uint32_t cluster_bits, uint32_t refcount_order = 4, bool extended = false) {
  Header h;
  h.cluster_bits = cluster_bits;
  h.cluster_size = uint64_t{1} << cluster_bits;
  h.refcount_order = refcount_order;
  h.incompatible_features = extended ? kIncompatExtendedL2 : 0;
  return GeometryOf(h);
}

TEST(Geometry, MatchesTheSpec) {
  const Geometry g = Geo(16);
  EXPECT_EQ(g.l2_entries, 8192u);
  EXPECT_EQ(g.refcount_entries, 32768u);
  EXPECT_EQ(BytesPerL2(g), uint64_t{512} << 20);
  EXPECT_EQ(Geo(16, 0).refcount_entries, 524288u);
  EXPECT_EQ(Geo(16, 6).refcount_entries, 8192u);
  EXPECT_EQ(Geo(16, 4, true).l2_entries, 4096u);
  uint64_t n = 0;
  ASSERT_TRUE(L1EntriesFor(g, 1ull << 30, &n));
  EXPECT_EQ(n, 2u);
  ASSERT_TRUE(L1EntriesFor(g, (1ull << 30) + 1, &n));
  EXPECT_EQ(n, 3u);
  EXPECT_FALSE(L1EntriesFor(g, ~0ull, &n));
}

TEST(Entries, L1RoundTrip) {
  const uint64_t raw = EncodeL1(0x50000, true);
  EXPECT_EQ(raw, 0x8000000000050000ull);
  const L1Entry e = DecodeL1(raw);
  EXPECT_EQ(e.l2_offset, 0x50000u);
  EXPECT_TRUE(e.copied);
  EXPECT_FALSE(e.reserved_bits);
  EXPECT_TRUE(DecodeL1(raw | 1).reserved_bits);
}

TEST(Entries, L2Kinds) {
  const Geometry g = Geo(16);
  EXPECT_EQ(DecodeL2(g, 0, 0).kind, ClusterKind::kUnallocated);
  EXPECT_EQ(DecodeL2(g, 1, 0).kind, ClusterKind::kZeroPlain);
  EXPECT_EQ(DecodeL2(g, 0x70001, 0).kind, ClusterKind::kZeroAllocated);
  const L2Entry n = DecodeL2(g, EncodeL2Normal(0x70000, true), 0);
  EXPECT_EQ(n.kind, ClusterKind::kNormal);
  EXPECT_EQ(n.host_offset, 0x70000u);
  EXPECT_TRUE(n.copied);
  EXPECT_TRUE(DecodeL2(g, 0x70200, 0).unaligned_offset);
  // Compressed, 64 KiB clusters: x = 62 - 8 = 54 offset bits; 3 additional sectors.
  const uint64_t compressed = kCompressedFlag | (3ull << 54) | 0x123456;
  const L2Entry c = DecodeL2(g, compressed, 0);
  EXPECT_EQ(c.kind, ClusterKind::kCompressed);
  EXPECT_EQ(c.host_offset, 0x123456u);
  EXPECT_EQ(c.compressed_bytes, 4u * 512);
  // Extended L2: the bitmap decides.
  const L2Entry x = DecodeL2(Geo(16, 4, true), 0x70000, 0x0000000F000000F0ull);
  EXPECT_EQ(x.kind, ClusterKind::kNormal);
  EXPECT_EQ(x.subcluster_alloc, 0xF0u);
  EXPECT_EQ(x.subcluster_zero, 0xFu);
}

TEST(Entries, RefcountsOfEveryWidthRoundTrip) {
  std::mt19937_64 rng(7);
  for (uint32_t order = 0; order <= 6; ++order) {
    SCOPED_TRACE(order);
    const uint64_t entries = 4096 * 8 >> order;
    std::vector<uint8_t> block(4096, 0);
    std::vector<uint64_t> expect(entries, 0);
    for (int i = 0; i < 2000; ++i) {
      const uint64_t idx = rng() % entries;
      const uint64_t v = rng() & MaxRefcount(order);
      SetRefcount(block.data(), order, idx, v);
      expect[idx] = v;
    }
    for (uint64_t i = 0; i < entries; ++i) ASSERT_EQ(GetRefcount(block.data(), order, i), expect[i]);
  }
  // 16-bit refcounts are big-endian.
  std::vector<uint8_t> block(8, 0);
  SetRefcount(block.data(), 4, 1, 0x0102);
  EXPECT_EQ(block[2], 1);
  EXPECT_EQ(block[3], 2);
  EXPECT_EQ(MaxRefcount(0), 1u);
  EXPECT_EQ(MaxRefcount(4), 65535u);
  EXPECT_EQ(MaxRefcount(6), ~0ull);
}

}  // namespace
}  // namespace instar::qcow2
