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

base::ByteView View(const std::string& s) {
  return base::ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// The rewritten text, or "FAILED"; `terminated` says whether a NUL follows it.
std::string RewriteWithLines(const std::string& text, uint64_t total, uint64_t last,
                             const NewExtentLine* added, uint32_t count, bool* terminated) {
  DescriptorSizes sizes;
  sizes.total_sectors = total;
  sizes.last_extent_sectors = last;
  sizes.added = added;
  sizes.added_count = count;
  std::string out(1024, 'x');
  uint64_t length = 0;
  if (!RewriteVmdkDescriptor(View(text), sizes, reinterpret_cast<uint8_t*>(out.data()),
                             out.size(), &length)) {
    return "FAILED";
  }
  *terminated = out[length] == '\0';
  return out.substr(0, length);
}

TEST(VmdkText, GrowsTheLastExtentAndAddsLines) {
  const std::string text =
      "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
      "RW 4194304 SPARSE \"t-s001.vmdk\"\nRW 2097152 SPARSE \"t-s002.vmdk\"\n\n"
      "ddb.geometry.cylinders = \"6241\"\nddb.geometry.heads = \"255\"\n"
      "ddb.geometry.sectors = \"63\"";
  const std::string a = "t-s003.vmdk";
  const std::string b = "t-s004.vmdk";
  const NewExtentLine added[] = {{4194304, View(a)}, {1, View(b)}};
  bool terminated = false;
  EXPECT_EQ(RewriteWithLines(text, 3 * 4194304 + 1, 4194304, added, 2, &terminated),
            "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
            "RW 4194304 SPARSE \"t-s001.vmdk\"\nRW 4194304 SPARSE \"t-s002.vmdk\"\n"
            "RW 4194304 SPARSE \"t-s003.vmdk\"\nRW 1 SPARSE \"t-s004.vmdk\"\n\n"
            "ddb.geometry.cylinders = \"783\"\nddb.geometry.heads = \"255\"\n"
            "ddb.geometry.sectors = \"63\"");
  EXPECT_TRUE(terminated);
}

TEST(VmdkText, RewritesTheLineOfTheNamedExtent) {
  // qemu skips an RW line of an unknown type: the last extent is the one before it.
  const std::string text = "RW 8 SPARSE \"a.vmdk\"\nRW 4 ZERO \"z\"\n";
  DescriptorSizes sizes;
  sizes.total_sectors = 16;
  sizes.last_extent_sectors = 16;
  sizes.last_extent_at = text.find("a.vmdk");
  std::string out(64, 'x');
  uint64_t length = 0;
  ASSERT_TRUE(RewriteVmdkDescriptor(View(text), sizes, reinterpret_cast<uint8_t*>(out.data()),
                                    out.size(), &length));
  EXPECT_EQ(out.substr(0, length), "RW 16 SPARSE \"a.vmdk\"\nRW 4 ZERO \"z\"\n");
}

TEST(VmdkText, AddsLinesAfterAFinalExtentLine) {
  const std::string b = "b.vmdk";
  const NewExtentLine added[] = {{2, View(b)}};
  bool terminated = false;
  EXPECT_EQ(RewriteWithLines("RW 8 SPARSE \"a.vmdk\"", 18, 16, added, 1, &terminated),
            "RW 16 SPARSE \"a.vmdk\"\nRW 2 SPARSE \"b.vmdk\"\n");
}

}  // namespace
}  // namespace instar::resize
