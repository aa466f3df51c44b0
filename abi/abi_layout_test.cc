// Layout of every ABI struct, checked at run time too: the static_asserts in the headers pin
// offsets for the compiler that builds them; this test pins what a reader of the wire bytes
// sees (sizes, offsets, magics distinct, memory map sane).
#include <cstddef>
#include <cstring>
#include <set>

#include "abi/call_table.h"
#include "abi/chain_config.h"
#include "abi/check.h"
#include "abi/commit.h"
#include "abi/guest_image.h"
#include "abi/info.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "abi/rebase.h"
#include "abi/resize.h"
#include "abi/status.h"
#include "abi/transport.h"
#include "gtest/gtest.h"

namespace instar::abi {
namespace {

TEST(AbiLayout, StructSizes) {
  EXPECT_EQ(sizeof(Request), 72u);
  EXPECT_EQ(sizeof(CallTable), 216u);
  EXPECT_EQ(sizeof(CheckConfig), 64u);
  EXPECT_EQ(sizeof(CheckResult), 272u);
  EXPECT_EQ(sizeof(CheckFinding), 40u);
  EXPECT_EQ(sizeof(CheckFindingBatch), 1248u);
  EXPECT_EQ(sizeof(CheckSnapshotFinding), 32u + 2u * kSnapshotTextBytes);
  EXPECT_EQ(sizeof(ResizeConfig), 352u);
  EXPECT_EQ(sizeof(ResizeResult), 256u);
  EXPECT_EQ(sizeof(CommitConfig), 64u);
  EXPECT_EQ(sizeof(CommitResult), 256u);
  EXPECT_EQ(offsetof(CommitConfig, layers_below_base), 12u);
  EXPECT_EQ(offsetof(CommitResult, bytes_committed), 32u);
  EXPECT_EQ(kCommitErrorCount, 15u);
  EXPECT_EQ(kCommitUnsupportedCount, 6u);
  EXPECT_EQ(offsetof(ResizeConfig, size_mode), 24u);
  EXPECT_EQ(offsetof(ResizeConfig, backing_size), 32u);
  EXPECT_EQ(sizeof(RebaseConfig), 1136u);
  EXPECT_EQ(sizeof(RebaseResult), 256u);
  EXPECT_EQ(offsetof(RebaseConfig, new_backing_name), 48u);
  EXPECT_EQ(offsetof(RebaseResult, writes), 40u);
  EXPECT_EQ(kRebaseErrorCount, 25u);
  EXPECT_EQ(sizeof(ChainDevice), 48u);
  EXPECT_EQ(sizeof(ChainConfig), 16u + 48u * 65u);
  EXPECT_EQ(sizeof(GuestImageHeader), 48u);
  EXPECT_EQ(sizeof(InfoConfig), 64u);
  EXPECT_EQ(sizeof(InfoResult), 2104u);
}

TEST(AbiLayout, InfoResultKeepsItsSize) {
  EXPECT_EQ(offsetof(InfoResult, snapshot_count), 1144u);
  EXPECT_EQ(offsetof(InfoResult, bitmap_count), 1148u);
  EXPECT_EQ(offsetof(InfoResult, extent_count), 1152u);
  EXPECT_EQ(offsetof(InfoResult, feature_name_count), 1156u);
  EXPECT_EQ(offsetof(InfoResult, reserved) + sizeof(InfoResult::reserved), sizeof(InfoResult));
}

TEST(AbiLayout, InfoRecordsAreEightByteAligned) {
  EXPECT_EQ(sizeof(InfoTextRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoSnapshotRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoBitmapRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoVmdkExtentRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoLuksRecord) % 8, 0u);
  EXPECT_EQ(sizeof(InfoFeatureNameRecord) % 8, 0u);
  EXPECT_LE(kMaxInfoRecordBytes, kScratch.size);
}

TEST(AbiLayout, RequestOffsets) {
  EXPECT_EQ(offsetof(Request, magic), 0u);
  EXPECT_EQ(offsetof(Request, kind), 4u);
  EXPECT_EQ(offsetof(Request, device), 8u);
  EXPECT_EQ(offsetof(Request, count), 12u);
  EXPECT_EQ(offsetof(Request, sector), 16u);
  EXPECT_EQ(offsetof(Request, buffer), 24u);
  EXPECT_EQ(offsetof(Request, length), 32u);
  EXPECT_EQ(offsetof(Request, arg0), 40u);
  EXPECT_EQ(offsetof(Request, arg1), 48u);
  EXPECT_EQ(offsetof(Request, status), 56u);
  EXPECT_EQ(offsetof(Request, value), 64u);
}

TEST(AbiLayout, CallTableIsAppendOnly) {
  // Each entry's slot, in the order it was added. A new entry goes at the end.
  const size_t slots[] = {
      offsetof(CallTable, get_input_device_count), offsetof(CallTable, read_input_sector),
      offsetof(CallTable, write_input_sector),     offsetof(CallTable, get_input_capacity),
      offsetof(CallTable, get_input_sector_size),  offsetof(CallTable, read_output_sector),
      offsetof(CallTable, write_output_sector),    offsetof(CallTable, get_output_capacity),
      offsetof(CallTable, get_output_sector_size), offsetof(CallTable, get_operation_config),
      offsetof(CallTable, get_chain_config),       offsetof(CallTable, debug_print),
      offsetof(CallTable, send_progress),          offsetof(CallTable, send_error),
      offsetof(CallTable, send_complete),          offsetof(CallTable, send_info_result),
      offsetof(CallTable, send_record),            offsetof(CallTable, set_output_size),
      offsetof(CallTable, send_check_result),      offsetof(CallTable, send_resize_result),
      offsetof(CallTable, send_records),           offsetof(CallTable, send_rebase_result),
      offsetof(CallTable, send_commit_result),     offsetof(CallTable, flush),
      offsetof(CallTable, set_input_size),
  };
  for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); ++i) {
    EXPECT_EQ(slots[i], 16 + 8 * i) << "entry " << i;
  }
}

TEST(AbiLayout, InfoResultOffsets) {
  EXPECT_EQ(offsetof(InfoResult, magic), 0u);
  EXPECT_EQ(offsetof(InfoResult, format), 4u);
  EXPECT_EQ(offsetof(InfoResult, flags), 8u);
  EXPECT_EQ(offsetof(InfoResult, virtual_size), 16u);
  EXPECT_EQ(offsetof(InfoResult, cluster_size), 24u);
  EXPECT_EQ(offsetof(InfoResult, format_version), 28u);
  EXPECT_EQ(offsetof(InfoResult, refcount_bits), 32u);
  EXPECT_EQ(offsetof(InfoResult, backing_file_len), 52u);
  EXPECT_EQ(offsetof(InfoResult, incompatible_features), 64u);
  EXPECT_EQ(offsetof(InfoResult, backing_file), 88u);
  EXPECT_EQ(offsetof(InfoResult, backing_format), 1112u);
  EXPECT_EQ(offsetof(InfoConfig, requested_format), 4u);
}

TEST(AbiLayout, ChainConfigOffsets) {
  EXPECT_EQ(offsetof(ChainConfig, device_count), 4u);
  EXPECT_EQ(offsetof(ChainConfig, input), 16u);
  EXPECT_EQ(offsetof(ChainDevice, capacity), 16u);
  EXPECT_EQ(offsetof(ChainDevice, cluster_size), 32u);
  EXPECT_LE(sizeof(ChainConfig), kChainConfig.size);
}

TEST(AbiLayout, CheckOffsets) {
  EXPECT_EQ(offsetof(CheckConfig, max_clusters_per_pass), 16u);
  EXPECT_EQ(offsetof(CheckResult, failure), 12u);
  EXPECT_EQ(offsetof(CheckResult, passes), 96u);
  EXPECT_EQ(offsetof(CheckFindingBatch, findings), 8u);
  EXPECT_EQ(offsetof(CheckSnapshotFinding, id), 24u);
  EXPECT_EQ(kCheckErrorCount, 33u);
  EXPECT_EQ(kFindingKindMax, 44u);
  EXPECT_EQ(kSnapshotUpdateFailureCount, 2u);
}

TEST(AbiLayout, MagicsAreDistinct) {
  const std::set<uint32_t> magics = {
      kCallTableMagic,   kRequestMagic,     kChainConfigMagic,  kGuestImageMagic,
      kInfoConfigMagic,  kInfoResultMagic,  kCheckConfigMagic,  kCheckResultMagic,
      kResizeConfigMagic, kResizeResultMagic, kCheckFindingBatchMagic,
      kCheckSnapshotFindingMagic, kRebaseConfigMagic, kRebaseResultMagic,
      kCommitConfigMagic, kCommitResultMagic};
  EXPECT_EQ(magics.size(), 16u);
}

TEST(AbiLayout, MemoryMapHasThePlansValues) {
  EXPECT_EQ(kOperationLoadAddr, 0x20000u);
  EXPECT_EQ(kOperationMaxSize, 384u * 1024u);
  EXPECT_EQ(kCallTableAddr, 0x80000u);
  EXPECT_EQ(kOperationConfigAddr, 0x81000u);
  EXPECT_EQ(kChainConfigAddr, 0x82000u);
  EXPECT_EQ(kScratchMemBase, 0x300000u);
  EXPECT_EQ(kScratchMemSize, 0xCF0000u);
}

TEST(AbiLayout, RegionsDoNotOverlap) {
  std::vector<Region> all(std::begin(kSupervisorRegions), std::end(kSupervisorRegions));
  all.insert(all.end(), std::begin(kUserRegions), std::end(kUserRegions));
  all.push_back(kStackGuard);
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) {
      const bool disjoint = all[i].end() <= all[j].base || all[j].end() <= all[i].base;
      EXPECT_TRUE(disjoint) << std::hex << all[i].base << " overlaps " << all[j].base;
    }
    EXPECT_LE(all[i].end(), kGuestRamSize);
  }
  EXPECT_GE(kDoorbell.base, kGuestRamSize);
}

TEST(AbiLayout, CallTableUsableChecksMagicVersionSize) {
  CallTable t{};
  EXPECT_FALSE(CallTableUsable(nullptr));
  EXPECT_FALSE(CallTableUsable(&t));
  t.magic = kCallTableMagic;
  t.version = kCallTableVersion;
  t.size = sizeof(CallTable) - 8;
  EXPECT_FALSE(CallTableUsable(&t));
  t.size = sizeof(CallTable);
  EXPECT_TRUE(CallTableUsable(&t));
  t.version = kCallTableVersion - 1;
  EXPECT_FALSE(CallTableUsable(&t));
}

}  // namespace
}  // namespace instar::abi
