// The host's side of the check protocol against a hostile guest: results and finding records
// are validated before anything is printed, and every error code and finding kind has text.
#include "vmm/operations/check_request.h"

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/operations/check_messages.h"

namespace instar::vmm {
namespace {

abi::CheckResult GoodResult() {
  abi::CheckResult r{};
  r.magic = abi::kCheckResultMagic;
  r.format = static_cast<uint32_t>(abi::ImageFormat::kQcow2);
  r.allocated_clusters = 10;
  r.fragmented_clusters = 2;
  r.compressed_clusters = 1;
  return r;
}

template <class T>
Record AsRecord(uint32_t magic, const T& value) {
  Record r{magic, std::vector<uint8_t>(sizeof value)};
  std::memcpy(r.bytes.data(), &value, sizeof value);
  return r;
}

abi::CheckFindingBatch Batch(std::initializer_list<abi::CheckFinding> findings) {
  abi::CheckFindingBatch b{};
  b.magic = abi::kCheckFindingBatchMagic;
  for (const auto& f : findings) b.findings[b.count++] = f;
  return b;
}

TEST(CheckRequest, AcceptsAPlausibleResult) { EXPECT_TRUE(ValidateCheckResult(GoodResult()).ok()); }

TEST(CheckRequest, RefusesHostileResults) {
  auto r = GoodResult();
  r.magic = 0;
  EXPECT_FALSE(ValidateCheckResult(r).ok());
  r = GoodResult();
  r.format = static_cast<uint32_t>(abi::ImageFormat::kRaw);
  EXPECT_FALSE(ValidateCheckResult(r).ok());
  r = GoodResult();
  r.failure = abi::kCheckFailureCount;
  EXPECT_FALSE(ValidateCheckResult(r).ok());
  r = GoodResult();
  r.flags = 0x80;
  EXPECT_FALSE(ValidateCheckResult(r).ok());
  r = GoodResult();
  r.leaks = ~0ull;
  EXPECT_FALSE(ValidateCheckResult(r).ok());
  r = GoodResult();
  r.compressed_clusters = 11;
  EXPECT_FALSE(ValidateCheckResult(r).ok());
}

TEST(CheckRequest, FormatsFindingsInOrder) {
  std::vector<Record> records;
  records.push_back(AsRecord(abi::kCheckFindingBatchMagic,
                             Batch({{1, 0, 22, 1, 0}, {2, 0, 5, 0, 1}})));
  abi::CheckSnapshotFinding s{};
  s.magic = abi::kCheckSnapshotFindingMagic;
  s.kind = static_cast<uint32_t>(abi::SnapshotFindingKind::kL1Unaligned);
  s.value = 0x50008;
  std::strcpy(s.id, "1");
  s.id_len = 1;
  std::strcpy(s.name, "s1");
  s.name_len = 2;
  records.push_back(AsRecord(abi::kCheckSnapshotFindingMagic, s));
  records.push_back(AsRecord(abi::kCheckFindingBatchMagic,
                             Batch({{22, abi::kFindingRepairing, 0x8000000000050000ull, 1, 0}})));
  CheckOutcome out;
  ASSERT_TRUE(CollectCheckFindings(records, &out).ok());
  EXPECT_EQ(out.messages,
            "Leaked cluster 22 refcount=1 reference=0\n"
            "ERROR cluster 5 refcount=0 reference=1\n"
            "ERROR snapshot 1 (s1) l1_offset=0x50008: L1 table is not cluster aligned; snapshot "
            "table entry corrupted\n"
            "Repairing OFLAG_COPIED data cluster: l2_entry=8000000000050000 refcount=1\n");
}

TEST(CheckRequest, SortsFindingsByTheirOrderKeyStably) {
  // A later window's walk finding (key 3) goes between the first window's (keys 1 and 5),
  // ahead of the comparison lines (key 1 << 48); equal keys keep their arrival order.
  const uint64_t compare = uint64_t{1} << 48;
  std::vector<Record> records;
  records.push_back(AsRecord(abi::kCheckFindingBatchMagic,
                             Batch({{1, 0, 22, 1, 0, 1}, {1, 0, 23, 1, 0, 5},
                                    {1, 0, 30, 1, 0, compare}, {1, 0, 31, 1, 0, compare}})));
  records.push_back(AsRecord(abi::kCheckFindingBatchMagic, Batch({{2, 0, 40, 0, 1, 3}})));
  CheckOutcome out;
  ASSERT_TRUE(CollectCheckFindings(records, &out).ok());
  EXPECT_EQ(out.messages,
            "Leaked cluster 22 refcount=1 reference=0\n"
            "ERROR cluster 40 refcount=0 reference=1\n"
            "Leaked cluster 23 refcount=1 reference=0\n"
            "Leaked cluster 30 refcount=1 reference=0\n"
            "Leaked cluster 31 refcount=1 reference=0\n");
}

TEST(CheckRequest, RefusesHostileRecords) {
  CheckOutcome out;
  auto bad_kind = Batch({{abi::kFindingKindMax + 1, 0, 0, 0, 0}});
  EXPECT_FALSE(CollectCheckFindings({AsRecord(abi::kCheckFindingBatchMagic, bad_kind)}, &out).ok());
  auto bad_flags = Batch({{1, 0x10, 0, 0, 0}});
  EXPECT_FALSE(CollectCheckFindings({AsRecord(abi::kCheckFindingBatchMagic, bad_flags)}, &out).ok());
  auto bad_count = Batch({{1, 0, 0, 0, 0}});
  bad_count.count = abi::kFindingsPerBatch + 1;
  EXPECT_FALSE(CollectCheckFindings({AsRecord(abi::kCheckFindingBatchMagic, bad_count)}, &out).ok());
  bad_count.count = 0;
  EXPECT_FALSE(CollectCheckFindings({AsRecord(abi::kCheckFindingBatchMagic, bad_count)}, &out).ok());
  auto bad_metadata = Batch({{static_cast<uint32_t>(abi::FindingKind::kOverlapCorruptEvent), 0,
                              abi::kMetadataKindCount, 0, 1}});
  EXPECT_FALSE(
      CollectCheckFindings({AsRecord(abi::kCheckFindingBatchMagic, bad_metadata)}, &out).ok());
  abi::CheckSnapshotFinding s{};
  s.magic = abi::kCheckSnapshotFindingMagic;
  s.kind = 1;
  std::memset(s.id, 'x', sizeof s.id);  // unterminated
  s.id_len = 3;
  EXPECT_FALSE(CollectCheckFindings({AsRecord(abi::kCheckSnapshotFindingMagic, s)}, &out).ok());
  Record wrong_size{abi::kCheckFindingBatchMagic, std::vector<uint8_t>(10)};
  EXPECT_FALSE(CollectCheckFindings({wrong_size}, &out).ok());
  Record undeclared{0x1234, std::vector<uint8_t>(8)};
  EXPECT_FALSE(CollectCheckFindings({undeclared}, &out).ok());
}

TEST(CheckMessages, EveryErrorAndFindingHasText) {
  for (uint32_t code = 1; code < abi::kCheckErrorCount; ++code) {
    const std::string text = DescribeCheckError(static_cast<abi::CheckError>(code), 7);
    EXPECT_EQ(text.find("unknown check error") == 0, abi::CheckErrorRetired(code)) << code;
  }
  for (uint32_t kind = 1; kind <= abi::kFindingKindMax; ++kind) {
    abi::CheckFinding f{kind, 0, 1, 2, 0};
    ASSERT_TRUE(ValidateFinding(f).ok()) << kind;
    const std::string text = DescribeFinding(f);
    EXPECT_EQ(text.find("unknown check finding"), std::string::npos) << kind;
    if (kind != static_cast<uint32_t>(abi::FindingKind::kBitmapsInconsistent)) {
      EXPECT_EQ(text.back(), '\n') << kind;
    }
  }
  for (uint32_t failure = 1; failure < abi::kCheckFailureCount; ++failure) {
    EXPECT_NE(DescribeCheckFailure(static_cast<abi::CheckFailure>(failure)), "Check failed");
  }
}

}  // namespace
}  // namespace instar::vmm
