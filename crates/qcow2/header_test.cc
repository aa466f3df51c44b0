#include "crates/qcow2/header.h"

#include <cstring>
#include <vector>

#include "crates/base/endian.h"
#include "gtest/gtest.h"

namespace instar::qcow2 {
namespace {

// A v3 header with 64 KiB clusters, as qemu-img create writes it.
std::vector<uint8_t> V3Header(uint64_t size = 1 << 30) {
  std::vector<uint8_t> b(65536, 0);
  base::StoreBe32(&b[0], kMagic);
  base::StoreBe32(&b[4], 3);
  base::StoreBe32(&b[20], 16);
  base::StoreBe64(&b[24], size);
  base::StoreBe32(&b[36], 16);
  base::StoreBe64(&b[40], 0x30000);
  base::StoreBe64(&b[48], 0x10000);
  base::StoreBe32(&b[56], 1);
  base::StoreBe32(&b[96], 4);
  base::StoreBe32(&b[100], 112);
  return b;
}

base::Result<Header, HeaderError> Parse(const std::vector<uint8_t>& b) {
  return ParseHeader(base::ByteView(b.data(), b.size()));
}

TEST(ParseHeader, ReadsAV3Header) {
  auto h = Parse(V3Header());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.value().version, 3u);
  EXPECT_EQ(h.value().cluster_size, 65536u);
  EXPECT_EQ(h.value().size, uint64_t{1} << 30);
  EXPECT_EQ(h.value().refcount_bits(), 16u);
  EXPECT_EQ(h.value().header_length, 112u);
}

TEST(ParseHeader, ReadsBackingFileAndFormatExtension) {
  auto b = V3Header();
  base::StoreBe32(&b[112], kExtBackingFormat);
  base::StoreBe32(&b[116], 5);
  std::memcpy(&b[120], "qcow2", 5);
  base::StoreBe64(&b[8], 0x200);
  base::StoreBe32(&b[16], 8);
  std::memcpy(&b[0x200], "base.img", 8);
  auto h = Parse(b);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.value().backing_file.offset, 0x200u);
  EXPECT_EQ(h.value().backing_file.length, 8u);
  EXPECT_EQ(h.value().backing_format.offset, 120u);
  EXPECT_EQ(h.value().backing_format.length, 5u);
}

TEST(ParseHeader, RefusesWhatQemuRefuses) {
  auto b = V3Header();
  base::StoreBe32(&b[0], 0x12345678);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kNotQcow2);
  b = V3Header();
  base::StoreBe32(&b[4], 4);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kUnsupportedVersion);
  EXPECT_EQ(Parse(b).error().detail, 4u);
  for (uint32_t bits : {0u, 8u, 22u, 64u, 0xFFFFFFFFu}) {
    b = V3Header();
    base::StoreBe32(&b[20], bits);
    EXPECT_EQ(Parse(b).error().code, HeaderError::kInvalidClusterSize) << bits;
  }
  b = V3Header();
  base::StoreBe32(&b[96], 7);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kRefcountOrderTooLarge);
  b = V3Header();
  base::StoreBe64(&b[72], uint64_t{1} << 40);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kUnsupportedFeatures);
  EXPECT_EQ(Parse(b).error().detail, uint64_t{1} << 40);
  b = V3Header();
  base::StoreBe32(&b[100], 100);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kHeaderTooShort);
  b = V3Header();
  base::StoreBe64(&b[8], 0x200);
  base::StoreBe32(&b[16], 2000);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kBackingFileTooLong);
  b = V3Header();
  base::StoreBe64(&b[8], 0xFFFFFFFFFFFFFFF0ull);
  base::StoreBe32(&b[16], 100);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kBackingFileTooLong);
}

TEST(ParseHeader, ExtensionLoopIsBoundedByTheHeaderArea) {
  auto b = V3Header();
  // An extension whose length runs past the cluster.
  base::StoreBe32(&b[112], 0x12345678);
  base::StoreBe32(&b[116], 0xFFFFFFF0);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kBadExtension);
}

TEST(ParseHeader, TruncatedInputNeverReadsOutOfBounds) {
  const auto full = V3Header();
  for (size_t n = 0; n < 120; ++n) {
    std::vector<uint8_t> b(full.begin(), full.begin() + n);
    (void)Parse(b);  // must not crash; ASan builds check the bounds
  }
  std::vector<uint8_t> b(full.begin(), full.begin() + 50);
  EXPECT_EQ(Parse(b).error().code, HeaderError::kTruncated);
}

}  // namespace
}  // namespace instar::qcow2
