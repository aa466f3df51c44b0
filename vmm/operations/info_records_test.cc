// Parsing the records an info guest sends: well-formed lists, and hostile buffers refused.
#include "vmm/operations/info_records.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace instar::vmm {
namespace {

class Writer {
 public:
  template <class T>
  Writer& Add(abi::InfoRecordType type, T fixed, const std::string& a = "",
              const std::string& b = "") {
    const size_t raw = sizeof(T) + a.size() + b.size();
    const size_t size = (raw + 7) / 8 * 8;
    fixed.header.type = static_cast<uint32_t>(type);
    fixed.header.size = static_cast<uint32_t>(size);
    const size_t at = bytes.size();
    bytes.resize(at + size, 0);
    std::memcpy(bytes.data() + at, &fixed, sizeof(T));
    std::memcpy(bytes.data() + at + sizeof(T), a.data(), a.size());
    std::memcpy(bytes.data() + at + sizeof(T) + a.size(), b.data(), b.size());
    return *this;
  }
  std::vector<uint8_t> bytes;
};

TEST(InfoRecords, ParsesEveryKind) {
  Writer w;
  abi::InfoTextRecord text{};
  text.length = 8;
  w.Add(abi::InfoRecordType::kDataFile, text, "data.raw");
  abi::InfoSnapshotRecord snap{};
  snap.id_length = 1;
  snap.name_length = 5;
  snap.icount = abi::kInfoNoIcount;
  snap.vm_clock_nsec = 1500;
  w.Add(abi::InfoRecordType::kSnapshot, snap, "1", "first");
  abi::InfoBitmapRecord bitmap{};
  bitmap.flags = abi::kInfoBitmapAuto;
  bitmap.granularity_bits = 16;
  bitmap.name_length = 3;
  w.Add(abi::InfoRecordType::kBitmap, bitmap, "bm0");
  abi::InfoVmdkExtentRecord extent{};
  extent.sectors = 2048;
  extent.flags = abi::kInfoExtentSparse;
  extent.cluster_size = 65536;
  extent.type_length = 6;
  extent.filename_length = 5;
  w.Add(abi::InfoRecordType::kVmdkExtent, extent, "SPARSE", "a.vmd");
  abi::InfoFeatureNameRecord feature{};
  feature.bit = 5;
  feature.name_length = 3;
  w.Add(abi::InfoRecordType::kFeatureName, feature, "new");

  auto parsed = ParseInfoRecords(w.bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed->data_file, "data.raw");
  ASSERT_EQ(parsed->snapshots.size(), 1u);
  EXPECT_EQ(parsed->snapshots[0].name, "first");
  EXPECT_FALSE(parsed->snapshots[0].icount);
  EXPECT_TRUE(parsed->bitmaps[0].auto_);
  EXPECT_EQ(parsed->extents[0].filename, "a.vmd");
  EXPECT_EQ(parsed->feature_names[0].name, "new");

  abi::InfoResult result{};
  result.snapshot_count = 1;
  result.bitmap_count = 1;
  result.extent_count = 1;
  result.feature_name_count = 1;
  EXPECT_TRUE(CheckRecordCounts(*parsed, result).ok());
  result.bitmap_count = 2;
  EXPECT_FALSE(CheckRecordCounts(*parsed, result).ok());
}

TEST(InfoRecords, TextsEndAtTheirFirstNul) {
  Writer w;
  abi::InfoSnapshotRecord snap{};
  snap.id_length = 3;
  snap.name_length = 4;
  w.Add(abi::InfoRecordType::kSnapshot, snap, std::string("1\0x", 3), "name");
  auto parsed = ParseInfoRecords(w.bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->snapshots[0].id, "1");
}

TEST(InfoRecords, RefusesHostileBuffers) {
  abi::InfoBitmapRecord bitmap{};
  bitmap.name_length = 1000;  // longer than the record
  Writer w;
  w.Add(abi::InfoRecordType::kBitmap, bitmap, "x");
  EXPECT_FALSE(ParseInfoRecords(w.bytes).ok());

  Writer unknown;
  abi::InfoTextRecord text{};
  unknown.Add(static_cast<abi::InfoRecordType>(99), text);
  EXPECT_FALSE(ParseInfoRecords(unknown.bytes).ok());

  Writer twice;
  twice.Add(abi::InfoRecordType::kDataFile, text).Add(abi::InfoRecordType::kDataFile, text);
  EXPECT_FALSE(ParseInfoRecords(twice.bytes).ok());

  std::vector<uint8_t> bad_size(16, 0);
  bad_size[0] = static_cast<uint8_t>(abi::InfoRecordType::kDataFile);
  bad_size[4] = 12;  // not a multiple of 8
  EXPECT_FALSE(ParseInfoRecords(bad_size).ok());
  bad_size[4] = 0;
  EXPECT_FALSE(ParseInfoRecords(bad_size).ok());
  EXPECT_FALSE(ParseInfoRecords(std::vector<uint8_t>(5, 0)).ok());

  Writer slack;  // padding longer than alignment needs
  abi::InfoTextRecord t{};
  slack.Add(abi::InfoRecordType::kDataFile, t, std::string(8, '\0'));
  reinterpret_cast<abi::InfoTextRecord*>(slack.bytes.data())->length = 0;
  EXPECT_FALSE(ParseInfoRecords(slack.bytes).ok());

  abi::InfoLuksRecord luks{};
  std::memcpy(luks.cipher_name, "a\x01", 2);
  Writer l;
  l.Add(abi::InfoRecordType::kLuks, luks);
  EXPECT_FALSE(ParseInfoRecords(l.bytes).ok());
}

}  // namespace
}  // namespace instar::vmm
