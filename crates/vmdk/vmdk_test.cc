// The vmdk sparse header and descriptor parsers.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::vmdk {
namespace {

void Le32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Le64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  Le32(b, at, static_cast<uint32_t>(v));
  Le32(b, at + 4, static_cast<uint32_t>(v >> 32));
}

// qemu-img's monolithicSparse header for a 1 MiB image.
std::vector<uint8_t> Sparse() {
  std::vector<uint8_t> b(512, 0);
  Le32(b, 0, kSparseMagic);
  Le32(b, 4, 1);
  Le32(b, 8, 3);
  Le64(b, 12, 2048);
  Le64(b, 20, 128);
  Le64(b, 28, 1);
  Le64(b, 36, 20);
  Le32(b, 44, 512);
  Le64(b, 64, 128);
  return b;
}

SparseHeaderError ErrorOf(const std::vector<uint8_t>& b) {
  auto r = ParseSparseHeader({b.data(), b.size()});
  EXPECT_FALSE(r.ok());
  return r.error().code;
}

TEST(SparseHeader, ParsesQemuImgHeader) {
  const auto b = Sparse();
  auto r = ParseSparseHeader({b.data(), b.size()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().capacity_sectors, 2048u);
  EXPECT_EQ(r.value().grain_sectors, 128u);
  EXPECT_EQ(r.value().descriptor_offset_sectors, 1u);
  EXPECT_EQ(r.value().overhead_sectors, 128u);
}

TEST(SparseHeader, AcceptsWhatQemuAccepts) {
  auto b = Sparse();
  Le64(b, 20, 3);  // a grain of three sectors
  EXPECT_TRUE(ParseSparseHeader({b.data(), b.size()}).ok());
  b = Sparse();
  Le32(b, 4, 0);
  EXPECT_TRUE(ParseSparseHeader({b.data(), b.size()}).ok());
  b = Sparse();
  Le32(b, 44, 1);
  Le64(b, 12, 0x10000000000);  // the grain directory size wraps in 32 bits, as in qemu
  EXPECT_TRUE(ParseSparseHeader({b.data(), b.size()}).ok());
}

TEST(SparseHeader, RefusesInQemusOrder) {
  auto b = Sparse();
  b[0] = 0;
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kNotSparse);
  b = Sparse();
  Le32(b, 4, 9);
  Le32(b, 44, 0);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kUnsupportedVersion);
  b = Sparse();
  Le64(b, 20, 0x200001);
  Le32(b, 44, 513);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kBadGrainTableSize);
  b = Sparse();
  Le64(b, 20, 0x200001);
  Le32(b, 44, 0);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kBadL1EntrySize);
  b = Sparse();
  Le64(b, 20, 0x200001);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kBadGrainSize);
  b = Sparse();
  Le32(b, 44, 1);
  Le64(b, 12, 128 * (1ull << 25) + 1);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kL1TooBig);
  EXPECT_EQ(ErrorOf(std::vector<uint8_t>(b.begin(), b.begin() + 40)),
            SparseHeaderError::kTruncated);
}

base::Status<DescriptorError> Parse(const std::string& text, Descriptor* d) {
  return ParseDescriptor({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, d);
}

std::string Field(const std::string& text, TextRange r) { return text.substr(r.offset, r.length); }

TEST(Descriptor, ParsesSplitSparse) {
  const std::string text =
      "# Disk DescriptorFile\nversion=1\nCID=a97d5bd8\nparentCID=ffffffff\n"
      "createType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n"
      "RW 4194304 SPARSE \"d-s001.vmdk\"\nRW 2097152 SPARSE \"d-s002.vmdk\"\n\n"
      "ddb.virtualHWVersion = \"4\"\n";
  Descriptor d;
  ASSERT_TRUE(Parse(text, &d).ok());
  EXPECT_EQ(d.cid, 0xa97d5bd8u);
  EXPECT_TRUE(d.has_parent_cid);
  EXPECT_EQ(Field(text, d.create_type), "twoGbMaxExtentSparse");
  ASSERT_EQ(d.extent_count, 2u);
  EXPECT_EQ(d.extents[1].type, ExtentType::kSparse);
  EXPECT_EQ(Field(text, d.extents[1].filename), "d-s002.vmdk");
  EXPECT_EQ(d.VirtualSizeBytes(), 6291456ull * 512);
}

TEST(Descriptor, FlatOffsetsAndParentHint) {
  const std::string text =
      "# Disk DescriptorFile\nCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\n"
      "parentFileNameHint=\"base.vmdk\"\nRW 100 FLAT \"x-flat.vmdk\" 7\n";
  Descriptor d;
  ASSERT_TRUE(Parse(text, &d).ok());
  EXPECT_EQ(Field(text, d.parent_file_name_hint), "base.vmdk");
  EXPECT_EQ(d.extents[0].offset_sectors, 7u);
}

TEST(Descriptor, RefusesMalformedText) {
  Descriptor d;
  EXPECT_EQ(Parse("not a descriptor", &d).error().code, DescriptorError::kNotDescriptor);
  EXPECT_EQ(Parse("# Disk DescriptorFile\nRW x FLAT \"a\"\n", &d).error().code,
            DescriptorError::kBadExtentLine);
  EXPECT_EQ(Parse("# Disk DescriptorFile\nCID=zz\n", &d).error().code, DescriptorError::kBadNumber);
  std::string many = "# Disk DescriptorFile\n";
  for (uint32_t i = 0; i <= kMaxExtents; ++i) many += "RW 1 FLAT \"f\" 0\n";
  EXPECT_EQ(Parse(many, &d).error().code, DescriptorError::kTooManyExtents);
}

}  // namespace
}  // namespace instar::vmdk
