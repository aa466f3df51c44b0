#include "tools/cli/size_format.h"

#include "gtest/gtest.h"

namespace instar::cli {
namespace {

// Expected strings are what qemu-img 7.2 prints for these byte counts.
TEST(HumanSize, MatchesQemuImg) {
  EXPECT_EQ(HumanSize(0), "0 B");
  EXPECT_EQ(HumanSize(512), "512 B");
  EXPECT_EQ(HumanSize(4096), "4 KiB");
  EXPECT_EQ(HumanSize(200704), "196 KiB");
  EXPECT_EQ(HumanSize(1000448), "977 KiB");
  EXPECT_EQ(HumanSize(67108864), "64 MiB");
  EXPECT_EQ(HumanSize(1073741824), "1 GiB");
  EXPECT_EQ(HumanSize(1610612736), "1.5 GiB");
  EXPECT_EQ(HumanSize(uint64_t{1} << 40), "1 TiB");
}

}  // namespace
}  // namespace instar::cli
