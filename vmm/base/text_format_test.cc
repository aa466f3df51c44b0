#include "vmm/base/text_format.h"

#include <string>

#include "gtest/gtest.h"

namespace instar {
namespace {

TEST(TextFormat, FormatsAnyLength) {
  EXPECT_EQ(Format("%s-%d", "a", 7), "a-7");
  EXPECT_EQ(Format("%s", ""), "");
  const std::string long_text(10000, 'x');
  EXPECT_EQ(Format("<%s>", long_text.c_str()), "<" + long_text + ">");
}

TEST(TextFormat, HexHasThePrefix) {
  EXPECT_EQ(Hex(0), "0x0");
  EXPECT_EQ(Hex(0x1A2B), "0x1a2b");
  EXPECT_EQ(Hex(UINT64_MAX), "0xffffffffffffffff");
}

}  // namespace
}  // namespace instar
