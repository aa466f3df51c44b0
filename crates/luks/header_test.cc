#include "crates/luks/header.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace instar::luks {
namespace {

void Be32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

std::vector<uint8_t> Header1() {
  std::vector<uint8_t> b(kHeaderBytes, 0);
  const uint8_t magic[] = {'L', 'U', 'K', 'S', 0xBA, 0xBE, 0, 1};
  std::memcpy(b.data(), magic, sizeof magic);
  std::memcpy(b.data() + 8, "aes", 3);
  std::memcpy(b.data() + 40, "xts-plain64", 11);
  std::memcpy(b.data() + 72, "sha256", 6);
  Be32(b, 104, 4040);
  Be32(b, 108, 64);
  Be32(b, 164, 1000);
  std::memcpy(b.data() + 168, "ce32a351-c7c5-4f8f-b19c-e4bd41f86173", 36);
  for (uint32_t i = 0; i < kKeySlots; ++i) {
    const size_t at = 208 + 48 * i;
    Be32(b, at, i == 0 ? kSlotActive : kSlotInactive);
    Be32(b, at + 4, i == 0 ? 5000 : 0);
    Be32(b, at + 40, 8 + 504 * i);
    Be32(b, at + 44, 4000);
  }
  return b;
}

TEST(LuksHeader, ParsesFields) {
  const auto b = Header1();
  auto r = ParseHeader({b.data(), b.size()});
  ASSERT_TRUE(r.ok());
  EXPECT_STREQ(r.value().cipher_name, "aes");
  EXPECT_STREQ(r.value().cipher_mode, "xts-plain64");
  EXPECT_EQ(r.value().payload_offset, 4040u);
  EXPECT_EQ(r.value().key_bytes, 64u);
  EXPECT_TRUE(r.value().slots[0].active);
  EXPECT_EQ(r.value().slots[0].iterations, 5000u);
  EXPECT_FALSE(r.value().slots[1].active);
  EXPECT_EQ(r.value().slots[1].key_material_offset, 512u);
}

TEST(LuksHeader, RefusesMalformedHeaders) {
  auto b = Header1();
  EXPECT_EQ(ParseHeader({b.data(), 100}).error().code, HeaderError::kTruncated);
  b[0] = 'X';
  EXPECT_EQ(ParseHeader({b.data(), b.size()}).error().code, HeaderError::kBadMagic);
  b = Header1();
  b[7] = 2;
  EXPECT_EQ(ParseHeader({b.data(), b.size()}).error().code, HeaderError::kUnsupportedVersion);
  b = Header1();
  Be32(b, 208 + 48 * 3, 12345);
  auto r = ParseHeader({b.data(), b.size()});
  EXPECT_EQ(r.error().code, HeaderError::kBadSlot);
  EXPECT_EQ(r.error().detail, 3u);
}

}  // namespace
}  // namespace instar::luks
