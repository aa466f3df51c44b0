#include <cstring>
#include <string>
#include <vector>

#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"
#include "gtest/gtest.h"

namespace instar::vmdk {
namespace {

base::ByteView View(const std::string& s) {
  return base::ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string Slice(const std::string& text, TextRange r) { return text.substr(r.offset, r.length); }

const std::string kDescriptor =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=4bef6a58\n"
    "parentCID=ffffffff\n"
    "createType=\"twoGbMaxExtentFlat\"\n"
    "\n"
    "# Extent description\n"
    "RW 4194304 FLAT \"disk-f001.vmdk\" 0\n"
    "RW 2048 FLAT \"disk-f002.vmdk\" 0\n"
    "RW 100 ZERO\n"
    "\n"
    "ddb.virtualHWVersion = \"4\"\n";

TEST(Descriptor, ParsesKeysAndExtents) {
  Descriptor d;
  ASSERT_TRUE(ParseDescriptor(View(kDescriptor), &d).ok());
  EXPECT_EQ(d.cid, 0x4bef6a58u);
  EXPECT_EQ(d.parent_cid, 0xFFFFFFFFu);
  EXPECT_EQ(Slice(kDescriptor, d.create_type), "twoGbMaxExtentFlat");
  ASSERT_EQ(d.extent_count, 3u);
  EXPECT_EQ(d.extents[0].sectors, 4194304u);
  EXPECT_EQ(d.extents[0].type, ExtentType::kFlat);
  EXPECT_EQ(Slice(kDescriptor, d.extents[1].filename), "disk-f002.vmdk");
  EXPECT_EQ(d.extents[2].type, ExtentType::kZero);
  EXPECT_EQ(d.VirtualSizeBytes(), (4194304u + 2048u + 100u) * 512ull);
}

TEST(Descriptor, RefusesBadInput) {
  Descriptor d;
  EXPECT_EQ(ParseDescriptor(View("hello"), &d).error().code, DescriptorError::kNotDescriptor);
  EXPECT_EQ(ParseDescriptor(View("# Disk DescriptorFile\nRW x FLAT \"a\" 0\n"), &d).error().code,
            DescriptorError::kBadExtentLine);
  EXPECT_EQ(ParseDescriptor(View("# Disk DescriptorFile\nCID=zz\n"), &d).error().code,
            DescriptorError::kBadNumber);
  std::string many = "# Disk DescriptorFile\n";
  for (uint32_t i = 0; i <= kMaxExtents; ++i) many += "RW 1 ZERO\n";
  EXPECT_EQ(ParseDescriptor(View(many), &d).error().code, DescriptorError::kTooManyExtents);
  EXPECT_EQ(ParseDescriptor(View(std::string(kMaxDescriptorBytes + 1, '#')), &d).error().code,
            DescriptorError::kTooLarge);
}

TEST(Descriptor, VirtualSizeSaturates) {
  Descriptor d;
  ASSERT_TRUE(ParseDescriptor(View("# Disk DescriptorFile\nRW 18446744073709551615 ZERO\n"
                                   "RW 5 ZERO\n"),
                              &d)
                  .ok());
  EXPECT_EQ(d.VirtualSizeBytes(), UINT64_MAX);
}

TEST(SparseHeader, ParsesAndValidates) {
  std::vector<uint8_t> b(512, 0);
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(&b[off], &v, 4); };
  auto put64 = [&](size_t off, uint64_t v) { std::memcpy(&b[off], &v, 8); };
  put32(0, kSparseMagic);
  put32(4, 1);
  put64(12, 204800);
  put64(20, 128);
  put32(44, 512);
  auto h = ParseSparseHeader(base::ByteView(b.data(), b.size()));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.value().capacity_sectors, 204800u);
  EXPECT_EQ(h.value().grain_sectors, 128u);
  put64(20, 3);
  EXPECT_EQ(ParseSparseHeader(base::ByteView(b.data(), b.size())).error().code,
            SparseHeaderError::kBadGrainSize);
  put64(20, 128);
  put32(4, 9);
  EXPECT_EQ(ParseSparseHeader(base::ByteView(b.data(), b.size())).error().code,
            SparseHeaderError::kUnsupportedVersion);
  EXPECT_EQ(ParseSparseHeader(base::ByteView(b.data(), 40)).error().code,
            SparseHeaderError::kTruncated);
}

}  // namespace
}  // namespace instar::vmdk
