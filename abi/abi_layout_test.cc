// The guest<->host contract's layouts, checked at run time as well as by the static_asserts
// in the headers (a test failure names the field).
#include <gtest/gtest.h>

#include <cstddef>

#include "abi/call_table.h"
#include "abi/chain_config.h"
#include "abi/info.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "abi/transport.h"

namespace instar::abi {
namespace {

TEST(AbiLayout, InfoResultKeepsItsSize) {
  EXPECT_EQ(sizeof(InfoResult), 2104u);
  EXPECT_EQ(offsetof(InfoResult, snapshot_count), 1144u);
  EXPECT_EQ(offsetof(InfoResult, bitmap_count), 1148u);
  EXPECT_EQ(offsetof(InfoResult, extent_count), 1152u);
  EXPECT_EQ(offsetof(InfoResult, feature_name_count), 1156u);
  EXPECT_EQ(offsetof(InfoResult, reserved) + sizeof(InfoResult::reserved), sizeof(InfoResult));
}

TEST(AbiLayout, CallTableAppendsOnly) {
  EXPECT_EQ(kCallTableVersion, 2u);
  EXPECT_EQ(offsetof(CallTable, send_info_result), 136u);
  EXPECT_EQ(offsetof(CallTable, send_records), 144u);
  EXPECT_LE(sizeof(CallTable), kCallTable.size);
}

TEST(AbiLayout, RecordsAreEightByteAligned) {
  EXPECT_EQ(sizeof(InfoTextRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoSnapshotRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoBitmapRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoVmdkExtentRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoLuksRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoFeatureNameRecord) % 8, 0u);
  EXPECT_LE(kMaxInfoRecordBytes, kScratch.size);
}

TEST(AbiLayout, ConfigsFitTheirPages) {
  EXPECT_LE(sizeof(InfoConfig), kOperationConfig.size);
  EXPECT_LE(sizeof(ChainConfig), kChainConfig.size);
  EXPECT_LE(sizeof(Request), kTransport.size);
}

}  // namespace
}  // namespace instar::abi
