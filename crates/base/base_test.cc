#include <cstdint>

#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/result.h"
#include "gtest/gtest.h"

namespace instar::base {
namespace {

enum class E { kA = 1, kB = 2 };

Result<int, E> Half(int v) {
  if (v % 2 != 0) return Fail(E::kA, static_cast<unsigned long long>(v));
  return v / 2;
}

Result<int, E> Quarter(int v) {
  TRY(int h, Half(v));
  TRY(int q, Half(h));
  return q;
}

TEST(Result, TryPropagatesFirstError) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, E::kA);
  EXPECT_EQ(r.error().detail, 3u);
}

TEST(Checked, DetectsOverflow) {
  uint64_t out = 7;
  EXPECT_FALSE(CheckedMul(UINT64_MAX / 2 + 1, 2, &out));
  EXPECT_EQ(out, 7u);
  EXPECT_TRUE(CheckedMul(1u << 20, 1u << 20, &out));
  EXPECT_EQ(out, uint64_t{1} << 40);
  EXPECT_FALSE(CheckedAdd(UINT64_MAX, 1, &out));
  EXPECT_FALSE(CheckedShl(3, 63, &out));
  EXPECT_FALSE(CheckedShl(1, 64, &out));
  EXPECT_TRUE(CheckedShl(1, 63, &out));
  EXPECT_FALSE(CheckedAlignUp(UINT64_MAX - 2, 512, &out));
  EXPECT_TRUE(CheckedAlignUp(513, 512, &out));
  EXPECT_EQ(out, 1024u);
  EXPECT_TRUE(IsPowerOfTwo(65536));
  EXPECT_FALSE(IsPowerOfTwo(0));
  EXPECT_FALSE(IsPowerOfTwo(65535));
}

TEST(ByteView, RefusesReadsPastTheEnd) {
  const uint8_t bytes[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
  ByteView v(bytes, sizeof bytes);
  uint32_t x = 0;
  EXPECT_TRUE(v.Be32(0, &x));
  EXPECT_EQ(x, 0x12345678u);
  EXPECT_TRUE(v.Le32(1, &x));
  EXPECT_EQ(x, 0x9a785634u);
  EXPECT_FALSE(v.Be32(2, &x));
  EXPECT_FALSE(v.Be32(UINT64_MAX - 1, &x));
  EXPECT_EQ(v.Sub(4, 2).size(), 0u);
  EXPECT_EQ(v.Sub(4, 1).size(), 1u);
}

}  // namespace
}  // namespace instar::base
