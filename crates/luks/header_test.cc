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
  EXPECT_EQ(r.value().slots[0].state, kSlotActive);
  EXPECT_EQ(r.value().slots[0].iterations, 5000u);
  EXPECT_EQ(r.value().slots[1].state, kSlotInactive);
  EXPECT_EQ(r.value().slots[1].key_material_offset, 512u);
  EXPECT_TRUE(CheckHeader(r.value()).ok());
}

TEST(LuksHeader, RefusesMalformedHeaders) {
  auto b = Header1();
  EXPECT_EQ(ParseHeader({b.data(), 100}).error().code, HeaderError::kTruncated);
  b[0] = 'X';
  EXPECT_EQ(ParseHeader({b.data(), b.size()}).error().code, HeaderError::kBadMagic);
  b = Header1();
  b[7] = 2;
  EXPECT_EQ(ParseHeader({b.data(), b.size()}).error().code, HeaderError::kUnsupportedVersion);
}

// CheckHeader's verdict on Header1 with `edit` applied.
template <class Edit>
base::Status<CheckError> Check(Edit edit) {
  auto b = Header1();
  Header h = ParseHeader({b.data(), b.size()}).value();
  edit(h);
  return CheckHeader(h);
}

TEST(LuksHeader, ChecksInQemusOrder) {
  auto code = [](auto edit) { return Check(edit).error().code; };
  EXPECT_EQ(code([](Header& h) { h.payload_offset = 4; h.slots[0].stripes = 1; }),
            CheckError::kPayloadOverlapsHeader);
  EXPECT_EQ(code([](Header& h) { h.slots[5].state = 5; }), CheckError::kSlotState);
  EXPECT_EQ(code([](Header& h) { h.slots[1].stripes = 3999; }), CheckError::kSlotStripes);
  EXPECT_EQ(code([](Header& h) { h.slots[0].key_material_offset = 1; }),
            CheckError::kSlotOverlapsHeader);
  // Slot 1 moved onto slot 3 is found before slot 5's bad state.
  auto overlap = Check([](Header& h) {
    h.slots[3].key_material_offset = 1000;
    h.slots[5].state = 5;
  });
  EXPECT_EQ(overlap.error().code, CheckError::kSlotsOverlap);
  EXPECT_EQ(overlap.error().detail, 1u * kKeySlots + 3);
  EXPECT_EQ(code([](Header& h) { std::memcpy(h.cipher_mode, "xts\0", 4); }),
            CheckError::kModeFormat);
  EXPECT_EQ(code([](Header& h) {
              h.cipher_mode[0] = 'y';
              h.cipher_name[0] = 'x';
            }),
            CheckError::kMode);
  EXPECT_EQ(code([](Header& h) { h.cipher_mode[4] = 'q'; }), CheckError::kIvgen);
  EXPECT_EQ(code([](Header& h) { std::memcpy(h.cipher_mode, "cbc-essiv:xha256", 17); }),
            CheckError::kIvgenHash);
  EXPECT_EQ(code([](Header& h) { h.key_bytes = 7; }), CheckError::kCipher);
  EXPECT_EQ(code([](Header& h) { h.hash_spec[0] = 'x'; }), CheckError::kHash);
  EXPECT_TRUE(Check([](Header& h) {
                std::memcpy(h.cipher_mode, "cbc-essiv:sha256", 17);
                h.key_bytes = 16;
              }).ok());
}

}  // namespace
}  // namespace instar::luks
