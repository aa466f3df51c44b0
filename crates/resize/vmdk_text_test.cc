#include "crates/resize/vmdk_text.h"

#include <string>

#include "gtest/gtest.h"

namespace instar::resize {
namespace {

std::string Rewrite(const std::string& text, uint64_t sectors, uint64_t capacity) {
  std::string out(capacity, 'x');
  const bool ok = RewriteVmdkSize(
      base::ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), sectors,
      reinterpret_cast<uint8_t*>(out.data()), capacity);
  if (!ok) return "FAILED";
  return out.substr(0, out.find('\0'));
}

TEST(VmdkText, RewritesExtentAndCylinders) {
  const std::string text =
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\n\n"
      "RW 131072 SPARSE \"v64.vmdk\"\n\nddb.geometry.cylinders = \"130\"\n"
      "ddb.geometry.heads = \"16\"\n";
  const std::string want =
      "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\n\n"
      "RW 4194304 SPARSE \"v64.vmdk\"\n\nddb.geometry.cylinders = \"4161\"\n"
      "ddb.geometry.heads = \"16\"\n";
  EXPECT_EQ(Rewrite(text + std::string(100, '\0'), 4194304, 1024), want);
}

TEST(VmdkText, RefusesWithoutExtentOrRoom) {
  EXPECT_EQ(Rewrite("# Disk DescriptorFile\nversion=1\n", 100, 512), "FAILED");
  EXPECT_EQ(Rewrite("RW 1 SPARSE \"a\"\n", 123456789, 10), "FAILED");
}

TEST(VmdkText, GrowsTheLastExtentAndAddsLines) {
  const std::string text =
      "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
      "RW 4194304 SPARSE \"t-s001.vmdk\"\nRW 2097152 SPARSE \"t-s002.vmdk\"\n\n"
      "ddb.geometry.cylinders = \"6241\"\nddb.geometry.heads = \"255\"\n"
      "ddb.geometry.sectors = \"63\"";
  const std::string a = "t-s003.vmdk";
  const std::string b = "t-s004.vmdk";
  const NewExtentLine added[] = {
      {4194304, base::ByteView(reinterpret_cast<const uint8_t*>(a.data()), a.size())},
      {1, base::ByteView(reinterpret_cast<const uint8_t*>(b.data()), b.size())}};
  DescriptorSizes sizes;
  sizes.total_sectors = 3 * 4194304 + 1;
  sizes.last_extent_sectors = 4194304;
  sizes.added = added;
  sizes.added_count = 2;
  std::string out(1024, 'x');
  uint64_t length = 0;
  ASSERT_TRUE(RewriteVmdkDescriptor(
      base::ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), sizes,
      reinterpret_cast<uint8_t*>(out.data()), out.size(), &length));
  EXPECT_EQ(out.substr(0, length),
            "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
            "RW 4194304 SPARSE \"t-s001.vmdk\"\nRW 4194304 SPARSE \"t-s002.vmdk\"\n"
            "RW 4194304 SPARSE \"t-s003.vmdk\"\nRW 1 SPARSE \"t-s004.vmdk\"\n\n"
            "ddb.geometry.cylinders = \"783\"\nddb.geometry.heads = \"255\"\n"
            "ddb.geometry.sectors = \"63\"");
  EXPECT_EQ(out[length], '\0');
}

TEST(VmdkText, AddsLinesAfterAFinalExtentLine) {
  const std::string text = "RW 8 SPARSE \"a.vmdk\"";
  const std::string b = "b.vmdk";
  const NewExtentLine added[] = {
      {2, base::ByteView(reinterpret_cast<const uint8_t*>(b.data()), b.size())}};
  DescriptorSizes sizes;
  sizes.total_sectors = 18;
  sizes.last_extent_sectors = 16;
  sizes.added = added;
  sizes.added_count = 1;
  std::string out(64, 'x');
  uint64_t length = 0;
  ASSERT_TRUE(RewriteVmdkDescriptor(
      base::ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), sizes,
      reinterpret_cast<uint8_t*>(out.data()), out.size(), &length));
  EXPECT_EQ(out.substr(0, length), "RW 16 SPARSE \"a.vmdk\"\nRW 2 SPARSE \"b.vmdk\"\n");
}

}  // namespace
}  // namespace instar::resize
