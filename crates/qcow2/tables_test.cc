// Snapshot table, bitmap directory and feature name table parsers.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "crates/qcow2/bitmaps.h"
#include "crates/qcow2/feature_names.h"
#include "crates/qcow2/snapshots.h"

namespace instar::qcow2 {
namespace {

void Be16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void Be32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void Be64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  Be32(b, at, static_cast<uint32_t>(v >> 32));
  Be32(b, at + 4, static_cast<uint32_t>(v));
}
base::ByteView View(const std::vector<uint8_t>& b) { return {b.data(), b.size()}; }

// One v3 snapshot entry (24 bytes of extra data) with id "1" and name "snap".
std::vector<uint8_t> SnapshotEntry() {
  std::vector<uint8_t> b(128, 0);
  Be16(b, 12, 1);
  Be16(b, 14, 4);
  Be32(b, 16, 1700000000);
  Be32(b, 20, 5000);
  Be64(b, 24, 3'500'000'000);
  Be32(b, 32, 7);
  Be32(b, 36, 24);
  Be64(b, 40, 1ull << 33);
  Be64(b, 56, 42);
  std::memcpy(b.data() + 64, "1snap", 5);
  return b;
}

TEST(Snapshots, ParsesAnEntry) {
  const auto b = SnapshotEntry();
  auto r = ParseSnapshot(View(b), 0);
  ASSERT_TRUE(r.ok());
  const Snapshot& s = r.value();
  EXPECT_EQ(s.date_sec, 1700000000u);
  EXPECT_EQ(s.vm_clock_nsec, 3'500'000'000u);
  EXPECT_EQ(s.vm_state_size, 1ull << 33);  // the 64-bit extra field wins
  EXPECT_EQ(s.icount, 42u);
  EXPECT_EQ(s.id_offset, 64u);
  EXPECT_EQ(s.id_length, 1u);
  EXPECT_EQ(s.name_offset, 65u);
  EXPECT_EQ(s.name_length, 4u);
  EXPECT_EQ(s.entry_size, 72u);
}

TEST(Snapshots, OldEntriesHaveNoIcount) {
  auto b = SnapshotEntry();
  Be32(b, 36, 0);
  auto r = ParseSnapshot(View(b), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().icount, kNoIcount);
  EXPECT_EQ(r.value().vm_state_size, 7u);
}

TEST(Snapshots, RefusesHostileEntries) {
  auto b = SnapshotEntry();
  Be32(b, 36, 1025);
  auto r = ParseSnapshot(View(b), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SnapshotError::kExtraTooLarge);
  b = SnapshotEntry();
  Be16(b, 14, 60000);
  r = ParseSnapshot(View(b), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SnapshotError::kTruncated);
  EXPECT_FALSE(ParseSnapshot(View(b), 120).ok());
}

TEST(Bitmaps, ParsesExtensionAndEntry) {
  std::vector<uint8_t> ext(24, 0);
  Be32(ext, 0, 1);
  Be64(ext, 8, 32);
  Be64(ext, 16, 0x50000);
  auto e = ParseBitmapsExtension(View(ext), 65536);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value().count, 1u);

  std::vector<uint8_t> dir(32, 0);
  Be64(dir, 0, 0x60000);
  Be32(dir, 12, kBitmapAuto);
  dir[16] = kBitmapTypeDirty;
  dir[17] = 16;
  Be16(dir, 18, 3);
  std::memcpy(dir.data() + 24, "bm0", 3);
  auto b = ParseBitmapEntry(View(dir), 0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().flags, kBitmapAuto);
  EXPECT_EQ(b.value().granularity_bits, 16);
  EXPECT_EQ(b.value().name_offset, 24u);
  EXPECT_EQ(b.value().entry_size, 32u);
  EXPECT_TRUE(SatisfiesConstraints(b.value(), 65536));
  BitmapEntry bad = b.value();
  bad.granularity_bits = 32;
  EXPECT_FALSE(SatisfiesConstraints(bad, 65536));
  bad = b.value();
  bad.flags |= kBitmapExtraDataCompatible;
  EXPECT_FALSE(SatisfiesConstraints(bad, 65536));
  bad = b.value();
  bad.table_offset += 512;
  EXPECT_FALSE(SatisfiesConstraints(bad, 65536));
  bad = b.value();
  bad.type = 2;
  EXPECT_FALSE(SatisfiesConstraints(bad, 65536));
}

TEST(Bitmaps, RefusesHostileDirectories) {
  std::vector<uint8_t> ext(24, 0);
  Be32(ext, 0, 1);
  Be64(ext, 8, 32);
  Be64(ext, 16, 0x50001);  // unaligned
  EXPECT_EQ(ParseBitmapsExtension(View(ext), 65536).error().code, BitmapError::kDirectoryOffset);
  EXPECT_EQ(ParseBitmapsExtension(View(ext).Sub(0, 16), 65536).error().code,
            BitmapError::kLength);
  Be32(ext, 4, 1);
  EXPECT_EQ(ParseBitmapsExtension(View(ext), 65536).error().code, BitmapError::kReserved);
  Be32(ext, 4, 0);
  Be32(ext, 0, 0);
  EXPECT_EQ(ParseBitmapsExtension(View(ext), 65536).error().code, BitmapError::kEmpty);
  Be32(ext, 0, 70000);
  EXPECT_EQ(ParseBitmapsExtension(View(ext), 65536).error().code, BitmapError::kTooMany);
  Be32(ext, 0, 1);
  Be64(ext, 16, 0x50000);
  Be64(ext, 8, 1ull << 33);
  EXPECT_EQ(ParseBitmapsExtension(View(ext), 65536).error().code,
            BitmapError::kDirectoryTooLarge);

  std::vector<uint8_t> dir(32, 0);
  Be16(dir, 18, 3);
  EXPECT_FALSE(ParseBitmapEntry(View(dir), 16).ok());  // the fixed part does not fit
  Be32(dir, 20, 0xFFFFFFF0);  // extra data past the end
  EXPECT_FALSE(ParseBitmapEntry(View(dir), 0).ok());
}

TEST(FeatureNames, ReadsEntriesUpToTheirNul) {
  std::vector<uint8_t> table(96, 0);
  table[1] = 0;
  std::memcpy(table.data() + 2, "dirty bit", 9);
  table[48] = 2;
  table[49] = 1;
  std::memset(table.data() + 50, 'x', 46);  // a full-width name has no NUL
  ASSERT_EQ(FeatureNameCount(View(table)), 2u);
  const FeatureName a = FeatureNameAt(View(table), 0);
  EXPECT_EQ(a.type, 0);
  EXPECT_EQ(a.name_length, 9u);
  const FeatureName b = FeatureNameAt(View(table), 1);
  EXPECT_EQ(b.type, 2);
  EXPECT_EQ(b.bit, 1);
  EXPECT_EQ(b.name_length, 46u);
}

}  // namespace
}  // namespace instar::qcow2
