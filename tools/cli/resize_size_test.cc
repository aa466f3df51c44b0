// ParseResizeSize against outcomes measured with qemu-img 7.2 resize (see the differential
// test for the end-to-end comparison).
#include "tools/cli/resize_size.h"

#include "gtest/gtest.h"

namespace instar::cli {
namespace {

uint64_t Bytes(const std::string& s) {
  const ParsedSize p = ParseResizeSize(s);
  EXPECT_EQ(p.status, SizeParseStatus::kOk) << s;
  return p.bytes;
}

SizeParseStatus StatusOf(const std::string& s) { return ParseResizeSize(s).status; }

TEST(ResizeSize, PlainAndSuffixed) {
  EXPECT_EQ(Bytes("1000"), 1000u);
  EXPECT_EQ(Bytes("2k"), 2048u);
  EXPECT_EQ(Bytes("3K"), 3072u);
  EXPECT_EQ(Bytes("1b"), 1u);
  EXPECT_EQ(Bytes("10B"), 10u);
  EXPECT_EQ(Bytes("1T"), 1ull << 40);
  EXPECT_EQ(Bytes("1P"), 1ull << 50);
  EXPECT_EQ(Bytes("1E"), 1ull << 60);
  EXPECT_EQ(Bytes("8E"), 1ull << 63);
  EXPECT_EQ(Bytes(" 5M"), 5u << 20);
  EXPECT_EQ(Bytes("18446744073709551615"), ~0ull);
}

TEST(ResizeSize, Fractions) {
  EXPECT_EQ(Bytes("1.5M"), 1572864u);
  EXPECT_EQ(Bytes("1.5k"), 1536u);
  EXPECT_EQ(Bytes("1.25M"), 1310720u);
  EXPECT_EQ(Bytes("1.3k"), 1331u);
  EXPECT_EQ(Bytes("1.k"), 1024u);
  EXPECT_EQ(Bytes("1.0"), 1u);
  EXPECT_EQ(Bytes("1.5e"), 3ull << 59);
  EXPECT_EQ(StatusOf("1.5"), SizeParseStatus::kInvalid);
  EXPECT_EQ(StatusOf(".5k"), SizeParseStatus::kInvalid);
  EXPECT_EQ(StatusOf("1e3"), SizeParseStatus::kInvalid);
  EXPECT_EQ(StatusOf("1.5e3k"), SizeParseStatus::kInvalid);
}

TEST(ResizeSize, Hex) {
  EXPECT_EQ(Bytes("0x100"), 256u);
  const ParsedSize p = ParseResizeSize("0x1M");
  EXPECT_EQ(p.bytes, 1u << 20);
  EXPECT_TRUE(p.hex_with_suffix);
  EXPECT_FALSE(ParseResizeSize("0x100").hex_with_suffix);
  EXPECT_EQ(StatusOf("0x1.5M"), SizeParseStatus::kInvalid);
}

TEST(ResizeSize, Signs) {
  ParsedSize p = ParseResizeSize("+1000");
  EXPECT_EQ(p.sign, SizeSign::kPlus);
  EXPECT_EQ(p.bytes, 1000u);
  p = ParseResizeSize("-512");
  EXPECT_EQ(p.sign, SizeSign::kMinus);
  EXPECT_EQ(p.bytes, 512u);
  p = ParseResizeSize("++5k");
  EXPECT_EQ(p.sign, SizeSign::kPlus);
  EXPECT_EQ(p.bytes, 5120u);
  EXPECT_EQ(Bytes("+ 1"), 1u);
  EXPECT_EQ(StatusOf("--5"), SizeParseStatus::kInvalid);
  EXPECT_EQ(ParseResizeSize("-0").bytes, 0u);
}

TEST(ResizeSize, Invalid) {
  for (const char* s : {"2x", "abc", "", "5M5", "5M ", "+", "1..5k", "0x", "k"}) {
    EXPECT_EQ(StatusOf(s), SizeParseStatus::kInvalid) << s;
  }
}

TEST(ResizeSize, OutOfRange) {
  EXPECT_EQ(StatusOf("16E"), SizeParseStatus::kOutOfRange);
  EXPECT_EQ(StatusOf("99999999999999999999"), SizeParseStatus::kOutOfRange);
  EXPECT_EQ(ParseResizeSize("+16E").number, "16E");
  // Trailing text wins over overflow.
  EXPECT_EQ(StatusOf("99999999999999999999x"), SizeParseStatus::kInvalid);
}

}  // namespace
}  // namespace instar::cli
