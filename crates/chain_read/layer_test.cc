// Layer on hand-built images: every mapping kind, run merging, compressed clusters and
// grains, bounded caches, and hostile entries refused with the offending offset.
#include "crates/chain_read/layer.h"

#include <gtest/gtest.h>

#include <vector>

#include "crates/chain_read/testing/test_images.h"

namespace instar::chain_read {
namespace {

using testing::Bytes;
using testing::Qcow2Image;
using testing::ReaderOf;
using testing::VmdkImage;

constexpr uint64_t kCopied = 1ull << 63;

class LayerTest : public ::testing::Test {
 protected:
  base::Result<Layer*, ReadError> Open(ImageFormat format, const Bytes& image,
                                       uint64_t budget = kDefaultLayerBudget) {
    return Layer::Open(format, ReaderOf(image), arena_, budget);
  }
  Layer* MustOpen(ImageFormat format, const Bytes& image, uint64_t budget = kDefaultLayerBudget) {
    auto r = Open(format, image, budget);
    EXPECT_TRUE(r.ok()) << static_cast<int>(r.error().code) << " " << r.error().detail;
    return r.ok() ? r.value() : nullptr;
  }
  std::vector<uint8_t> memory_ = std::vector<uint8_t>(16u << 20);
  base::Arena arena_{memory_.data(), memory_.size()};
};

Bytes ReadAll(Layer* layer, uint64_t offset, uint64_t length) {
  Bytes out(length, 0xEE);
  auto s = layer->Read(offset, length, out.data());
  EXPECT_TRUE(s.ok()) << static_cast<int>(s.error().code) << " " << s.error().detail;
  return out;
}

ReadError ReadErrorOf(Layer* layer, uint64_t offset, uint64_t length, uint64_t* detail) {
  Bytes out(length);
  auto s = layer->Read(offset, length, out.data());
  EXPECT_FALSE(s.ok());
  *detail = s.error().detail;
  return s.error().code;
}

TEST_F(LayerTest, RawIsDataUpToTheSizeRoundedToSectors) {
  Bytes raw(1000, 7);
  Layer* layer = MustOpen(ImageFormat::kRaw, raw);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->virtual_size(), 1024u);
  auto e = layer->Map(10, 5000);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value().kind, ExtentKind::kData);
  EXPECT_EQ(e.value().length, 1014u);
  EXPECT_EQ(e.value().host_offset, 10u);
  const Bytes out = ReadAll(layer, 990, 34);
  EXPECT_EQ(out, Bytes({7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST_F(LayerTest, Qcow2KindsAndRuns) {
  Qcow2Image img(9, 64 * 512);  // 512-byte clusters: one L2 table maps 32 KiB
  const uint64_t data = img.AllocData(3, 0xAA);
  img.Map(0, data | kCopied);
  img.Map(1, (data + 512) | kCopied);       // contiguous with cluster 0
  img.Map(2, (data + 1024 + 0) | kCopied);  // contiguous too
  img.Map(4, 1);                            // zero, no host cluster
  img.Map(5, 1);
  const uint64_t other = img.AllocData(1, 0xBB);
  img.Map(6, other | kCopied);              // not contiguous with anything
  img.Map(7, (data + 512) | kCopied);       // host goes backwards: a run of its own
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->virtual_size(), 64u * 512);
  EXPECT_EQ(layer->granularity(), 512u);
  struct Want {
    uint64_t offset;
    ExtentKind kind;
    uint64_t length;
    uint64_t host;
  };
  for (const Want& w : {Want{0, ExtentKind::kData, 1536, data},
                        Want{100, ExtentKind::kData, 1436, data + 100},
                        Want{1536, ExtentKind::kUnallocated, 512, 0},
                        Want{2048, ExtentKind::kZero, 1024, 0},
                        Want{3072, ExtentKind::kData, 512, other},
                        Want{3584, ExtentKind::kData, 512, data + 512},
                        Want{4096, ExtentKind::kUnallocated, 64 * 512 - 4096, 0}}) {
    auto e = layer->Map(w.offset, 1 << 20);
    ASSERT_TRUE(e.ok()) << w.offset;
    EXPECT_EQ(e.value().kind, w.kind) << w.offset;
    EXPECT_EQ(e.value().length, w.length) << w.offset;
    if (w.kind == ExtentKind::kData) {
      EXPECT_EQ(e.value().host_offset, w.host) << w.offset;
    }
  }
  auto clipped = layer->Map(0, 700);
  ASSERT_TRUE(clipped.ok());
  EXPECT_EQ(clipped.value().length, 700u);
  const Bytes out = ReadAll(layer, 1000, 3000);
  for (uint64_t i = 0; i < out.size(); ++i) {
    const uint64_t g = 1000 + i;
    const uint8_t want = g < 1536 ? 0xAA : g < 3072 ? 0 : g < 3584 ? 0xBB : 0xAA;
    ASSERT_EQ(out[i], want) << g;
  }
  uint64_t detail;
  EXPECT_EQ(ReadErrorOf(layer, 64 * 512 - 1, 2, &detail), ReadError::kOutOfRange);
  EXPECT_FALSE(layer->Map(64 * 512, 1).ok());
}

TEST_F(LayerTest, Qcow2HostileEntriesAreCorruptWithTheirOffset) {
  Qcow2Image img(12, 64 * 4096);
  const uint64_t l2 = img.Alloc();
  img.SetL1(0, l2 + 512);  // unaligned L2 table
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 0, 512, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, l2 + 512);

  img.SetL1(0, 1ull << 40);  // L2 table past the end of the file
  layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  EXPECT_EQ(ReadErrorOf(layer, 0, 512, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, 1ull << 40);

  img.SetL1(0, l2);
  img.SetL2(l2, 0, (1ull << 30) | kCopied);     // data past the end of the file
  img.SetL2(l2, 1, (l2 + 1024) | kCopied);      // unaligned data cluster
  img.SetL2(l2, 2, (l2 + 2048) | 1);            // unaligned zero cluster: qemu checks it too
  layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  EXPECT_EQ(ReadErrorOf(layer, 0, 512, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, 1ull << 30);
  EXPECT_EQ(ReadErrorOf(layer, 4096, 512, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, l2 + 1024);
  EXPECT_EQ(ReadErrorOf(layer, 8192, 1, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, l2 + 2048);
}

TEST_F(LayerTest, Qcow2DataRunningPastTheEndOfTheFileReadsZerosThere) {
  Qcow2Image img(9, 8 * 512);
  img.Map(0, 0);  // the L2 table first, so the data cluster ends the file
  const uint64_t data = img.AllocData(1, 0x42);
  img.Map(0, data | kCopied);
  img.Map(1, (data + 512) | kCopied);  // the cluster right after the end of the file
  img.bytes.resize(img.bytes.size() - 100);
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 512, 512, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, data + 512);
  const Bytes out = ReadAll(layer, 400, 112);
  for (uint64_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], 400 + i < 412 ? 0x42 : 0) << i;
}

TEST_F(LayerTest, Qcow2ExtendedL2Subclusters) {
  Qcow2Image img(14, 4 * 16384, /*extended_l2=*/true);  // 512-byte subclusters
  const uint64_t data = img.AllocData(1, 0x5C);
  // Subclusters 0-3 allocated, 4-5 zero, 6.. unallocated.
  img.Map(0, data | kCopied, 0xFull | (0x30ull << 32));
  img.Map(1, 0, 0xFFull << 32);  // no host cluster, subclusters 0-7 zero
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->granularity(), 512u);
  auto e = layer->Map(0, 1 << 20);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value().kind, ExtentKind::kData);
  EXPECT_EQ(e.value().length, 2048u);
  e = layer->Map(2048, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kZero);
  EXPECT_EQ(e.value().length, 1024u);
  e = layer->Map(3072, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kUnallocated);
  EXPECT_EQ(e.value().length, 16384u - 3072);
  e = layer->Map(16384, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kZero);
  EXPECT_EQ(e.value().length, 4096u);
  const Bytes out = ReadAll(layer, 2000, 100);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(out[i], 2000 + i < 2048 ? 0x5C : 0);

  img.Map(2, data | kCopied, 0x1ull | (0x1ull << 32));  // subcluster 0 allocated and zero
  img.Map(3, 0, 0x2);                                    // allocated without a host cluster
  layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 2 * 16384 + 5000, 1, &detail), ReadError::kCorrupt);
  EXPECT_EQ(ReadErrorOf(layer, 3 * 16384, 1, &detail), ReadError::kCorrupt);
}

TEST_F(LayerTest, Qcow2CompressedClusters) {
  Qcow2Image img(12, 16 * 4096);
  Bytes a(4096), b(4096);
  for (uint64_t i = 0; i < 4096; ++i) {
    a[i] = static_cast<uint8_t>(i / 7);
    b[i] = static_cast<uint8_t>(i % 13);
  }
  img.MapCompressed(0, a);
  img.MapCompressed(1, b);
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes);
  ASSERT_NE(layer, nullptr);
  auto e = layer->Map(100, 1 << 20);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value().kind, ExtentKind::kCompressed);
  EXPECT_EQ(e.value().length, 4096u - 100);  // one cluster at a time
  const Bytes out = ReadAll(layer, 1000, 6000);
  for (uint64_t i = 0; i < out.size(); ++i) {
    const uint64_t g = 1000 + i;
    ASSERT_EQ(out[i], g < 4096 ? a[g] : b[g - 4096]) << g;
  }
  // A compressed stream that stops short of a full cluster is refused.
  Qcow2Image bad(12, 16 * 4096);
  bad.MapCompressed(0, Bytes(1000, 1));
  layer = MustOpen(ImageFormat::kQcow2, bad.bytes);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 0, 512, &detail), ReadError::kBadCompressedData);
}

TEST_F(LayerTest, Qcow2CompressedClustersNeedRoomForTheirBuffers) {
  Qcow2Image img(16, 4 * 65536);
  img.MapCompressed(0, Bytes(65536, 9));
  // Two 32 KiB blocks: enough to open and map, not to inflate a 64 KiB cluster.
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes, 2 * (32768 + 16));
  ASSERT_NE(layer, nullptr);
  EXPECT_TRUE(layer->Map(0, 1).ok());
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 0, 1, &detail), ReadError::kArenaTooSmall);
  EXPECT_GT(detail, 2u * 65536);
  EXPECT_EQ(Open(ImageFormat::kQcow2, img.bytes, 32768).error().code, ReadError::kArenaTooSmall);
}

TEST_F(LayerTest, Qcow2SmallCacheReadsManyTables) {
  // 512-byte clusters: each L2 table maps 32 KiB; 64 tables through a two-block cache.
  Qcow2Image img(9, 2u << 20);
  for (uint64_t c = 0; c < 4096; c += 3) {
    const uint64_t d = img.AllocData(1, static_cast<uint8_t>(c));
    img.Map(c, d | kCopied);
  }
  Layer* layer = MustOpen(ImageFormat::kQcow2, img.bytes, 2 * (512 + 16));
  ASSERT_NE(layer, nullptr);
  const Bytes out = ReadAll(layer, 0, 2u << 20);
  for (uint64_t c = 0; c < 4096; ++c) {
    ASSERT_EQ(out[c * 512 + 7], c % 3 == 0 ? static_cast<uint8_t>(c) : 0) << c;
  }
}

TEST_F(LayerTest, Qcow2Refusals) {
  Qcow2Image img(16, 1 << 20);
  Bytes encrypted = img.bytes;
  testing::PutBe32(encrypted, 32, 1);  // AES
  EXPECT_EQ(Open(ImageFormat::kQcow2, encrypted).error().code, ReadError::kQcow2Encrypted);
  Bytes external = img.bytes;
  testing::PutBe64(external, 72, 1u << 2);
  EXPECT_EQ(Open(ImageFormat::kQcow2, external).error().code,
            ReadError::kQcow2ExternalDataFile);
  Bytes bad_magic = img.bytes;
  bad_magic[0] = 0;
  auto r = Open(ImageFormat::kQcow2, bad_magic);
  EXPECT_EQ(r.error().code, ReadError::kQcow2HeaderInvalid);
  EXPECT_EQ(r.error().detail, 0u);  // qcow2::HeaderError::kNotQcow2
  // zstd: plain clusters read, compressed ones are refused.
  Qcow2Image zstd(12, 4 * 4096);
  testing::PutBe64(zstd.bytes, 72, 1u << 3);
  zstd.bytes[104] = 1;
  const uint64_t d = zstd.AllocData(1, 3);
  zstd.Map(0, d | kCopied);
  zstd.MapCompressed(1, Bytes(4096, 4));
  Layer* layer = MustOpen(ImageFormat::kQcow2, zstd.bytes);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(ReadAll(layer, 0, 4)[3], 3);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 4096, 1, &detail), ReadError::kQcow2ZstdCompression);
}

TEST_F(LayerTest, VmdkSparseGrains) {
  VmdkImage img(64 * 8, 4, 1u << 2);  // 64 grains, 4 per table, zeroed-grain entries
  img.SetGrain(0, 0);  // the grain table first, so grains 0 and 1 are contiguous
  img.AddGrain(0, 0x10);
  img.AddGrain(1, 0x11);  // right after grain 0's data
  img.SetGrain(2, 1);     // zeroed
  img.AddGrain(9, 0x19);
  Layer* layer = MustOpen(ImageFormat::kVmdk, img.bytes);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->virtual_size(), 64u * 4096);
  EXPECT_EQ(layer->granularity(), 4096u);
  auto e = layer->Map(0, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kData);
  EXPECT_EQ(e.value().length, 8192u);
  e = layer->Map(8192, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kZero);
  EXPECT_EQ(e.value().length, 4096u);
  e = layer->Map(3 * 4096, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kUnallocated);
  EXPECT_EQ(e.value().length, 6u * 4096);  // grain 3 and the table-less grains 4-8
  const Bytes out = ReadAll(layer, 4000, 9 * 4096);
  for (uint64_t i = 0; i < out.size(); ++i) {
    const uint64_t grain = (4000 + i) / 4096;
    const uint8_t want = grain == 0 ? 0x10 : grain == 1 ? 0x11 : grain == 9 ? 0x19 : 0;
    ASSERT_EQ(out[i], want) << i;
  }
  img.SetGrain(20, 1u << 30);  // grain past the end of the file
  layer = MustOpen(ImageFormat::kVmdk, img.bytes);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 20 * 4096, 1, &detail), ReadError::kCorrupt);
  EXPECT_EQ(detail, (1ull << 30) * 512);
}

TEST_F(LayerTest, VmdkStreamOptimized) {
  VmdkImage img(16 * 8, 8, (1u << 16) | (1u << 17), 1);  // compressed, markers
  Bytes a(4096), b(3000, 0x77);
  for (uint64_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 3);
  img.AddCompressedGrain(0, a, true);
  img.AddCompressedGrain(1, b, true);  // inflates to less than a grain
  img.MoveHeaderToFooter();
  Layer* layer = MustOpen(ImageFormat::kVmdk, img.bytes);
  ASSERT_NE(layer, nullptr);
  auto e = layer->Map(0, 1 << 20);
  EXPECT_EQ(e.value().kind, ExtentKind::kCompressed);
  EXPECT_EQ(e.value().length, 4096u);
  EXPECT_EQ(ReadAll(layer, 0, 4096), a);
  EXPECT_EQ(ReadAll(layer, 4096, 3000), b);
  uint64_t detail = 0;
  EXPECT_EQ(ReadErrorOf(layer, 4096 + 2999, 2, &detail), ReadError::kBadCompressedData);

  Bytes broken = img.bytes;
  broken[broken.size() - 512 + 12] = 9;  // end-of-stream marker type
  EXPECT_EQ(Open(ImageFormat::kVmdk, broken).error().code, ReadError::kVmdkBadFooter);
}

TEST_F(LayerTest, VmdkRefusesTextDescriptors) {
  const char text[] = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n";
  const Bytes desc(text, text + sizeof text - 1);
  EXPECT_EQ(Open(ImageFormat::kVmdk, desc).error().code, ReadError::kVmdkMultiFile);
  EXPECT_EQ(Open(ImageFormat::kVmdk, Bytes(512, 0)).error().code, ReadError::kVmdkHeaderInvalid);
}

}  // namespace
}  // namespace instar::chain_read
