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

}  // namespace
}  // namespace instar::resize
