// The fake call table must serve what the host serves and abort on what the host would
// refuse as an operation bug; otherwise the fuzz targets could not fail.
#include "ops/testing/fake_call_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "abi/resize.h"
#include "abi/status.h"

namespace instar::ops::testing {
namespace {

constexpr int32_t kOk = static_cast<int32_t>(abi::CallStatus::kOk);
constexpr int32_t kOutOfRange = static_cast<int32_t>(abi::CallStatus::kOutOfRange);

FakeDevice Output(uint64_t size, uint64_t limit) {
  FakeDevice d = FakeDevice::Of(std::vector<uint8_t>(size, 0xAB));
  d.writable = true;
  d.write_limit = limit;
  return d;
}

vmm::ExpectedResult ResizeExpected() {
  return {abi::kResizeResultMagic, sizeof(abi::ResizeResult), {}};
}

TEST(FakeCallTable, ServesReadsWritesAndTheSparseTail) {
  FakeCallTable fake({}, {}, Output(1000, 1 << 20), ResizeExpected());
  const abi::CallTable* t = fake.table();
  ASSERT_TRUE(abi::CallTableUsable(t));
  uint8_t buffer[1024];
  // The last partial sector reads with zeros past the end of the file.
  ASSERT_EQ(t->read_output_sector(0, 2, buffer), kOk);
  EXPECT_EQ(buffer[999], 0xAB);
  EXPECT_EQ(buffer[1000], 0);
  ASSERT_EQ(t->set_output_size(1u << 20), kOk);
  EXPECT_EQ(t->get_output_capacity(), 1u << 20);
  ASSERT_EQ(t->read_output_sector(2040, 2, buffer), kOk);
  EXPECT_EQ(buffer[0], 0);
  const std::vector<uint8_t> ones(512, 1);
  ASSERT_EQ(t->write_output_sector(4, 1, ones.data()), kOk);
  EXPECT_EQ(fake.output()->Contents()[4 * 512], 1);
  EXPECT_EQ(fake.report().writes, 2u);
}

TEST(FakeCallTable, RefusesWritesPastTheWriteLimitAsTheHostDoes) {
  FakeCallTable fake({}, {}, Output(4096, 4096), ResizeExpected());
  const std::vector<uint8_t> ones(512, 1);
  EXPECT_EQ(fake.table()->write_output_sector(8, 1, ones.data()), kOutOfRange);
  EXPECT_EQ(fake.table()->set_output_size(4097), kOutOfRange);
  EXPECT_EQ(fake.report().refused_writes, 2u);
  EXPECT_EQ(fake.output()->size, 4096u);
}

TEST(FakeCallTable, CountsFlushesOfWritableDevices) {
  FakeCallTable fake({}, {}, Output(1024, 1024), ResizeExpected());
  EXPECT_EQ(fake.table()->flush(abi::kOutputDevice), kOk);
  EXPECT_EQ(fake.report().flushes, 1u);
}

// A writable input (a repair) grows up to its write limit and is cut back to any length not
// below its length at open.
TEST(FakeCallTable, SetsAWritableInputsLength) {
  std::vector<FakeDevice> inputs;
  inputs.push_back(Output(1000, 4096));
  FakeCallTable fake({}, std::move(inputs), std::nullopt, ResizeExpected());
  const abi::CallTable* t = fake.table();
  EXPECT_EQ(t->set_input_size(0, 4097), kOutOfRange);
  ASSERT_EQ(t->set_input_size(0, 1536), kOk);
  EXPECT_EQ(t->get_input_capacity(0), 1536u);
  ASSERT_EQ(t->set_input_size(0, 1001), kOk);
  EXPECT_EQ(fake.inputs()[0].size, 1001u);
}

TEST(FakeCallTableDeathTest, AbortsOnAnInputCutBelowItsLengthAtOpen) {
  std::vector<FakeDevice> inputs;
  inputs.push_back(Output(1000, 4096));
  FakeCallTable fake({}, std::move(inputs), std::nullopt, ResizeExpected());
  EXPECT_DEATH(fake.table()->set_input_size(0, 999), "below the input's size");
}

TEST(FakeCallTableDeathTest, AbortsOnAFlushOfAReadOnlyDevice) {
  std::vector<FakeDevice> inputs;
  inputs.push_back(FakeDevice::Of(std::vector<uint8_t>(512)));
  FakeCallTable fake({}, std::move(inputs), std::nullopt, ResizeExpected());
  EXPECT_DEATH(fake.table()->flush(0), "flush");
}

TEST(FakeCallTableDeathTest, AbortsOnAReadPastTheDevice) {
  FakeCallTable fake({}, {}, Output(1024, 1024), ResizeExpected());
  uint8_t buffer[1024];
  EXPECT_DEATH(fake.table()->read_output_sector(1, 2, buffer), "past the end");
}

TEST(FakeCallTableDeathTest, AbortsOnAWriteToAReadOnlyDevice) {
  std::vector<FakeDevice> inputs;
  inputs.push_back(FakeDevice::Of(std::vector<uint8_t>(512)));
  FakeCallTable fake({}, std::move(inputs), std::nullopt, ResizeExpected());
  const std::vector<uint8_t> ones(512, 1);
  EXPECT_DEATH(fake.table()->write_input_sector(0, 0, 1, ones.data()), "read-only");
}

TEST(FakeCallTableDeathTest, AbortsOnATransferAboveTheCap) {
  FakeCallTable fake({}, {}, Output(16 << 20, 16 << 20), ResizeExpected());
  std::vector<uint8_t> buffer(8 << 20);
  EXPECT_DEATH(fake.table()->read_output_sector(0, (8 << 20) / 512, buffer.data()), "sectors");
}

TEST(FakeCallTableDeathTest, AbortsOnAnythingAfterComplete) {
  FakeCallTable fake({}, {}, Output(1024, 1024), ResizeExpected());
  fake.table()->send_complete(0);
  EXPECT_DEATH(fake.table()->send_error(1, 0), "after send_complete");
}

TEST(FakeCallTableDeathTest, AbortsOnAResultOfAnotherOperation) {
  FakeCallTable fake({}, {}, Output(1024, 1024), ResizeExpected());
  abi::CheckResult result{};
  result.magic = abi::kCheckResultMagic;
  EXPECT_DEATH(fake.table()->send_check_result(&result), "another operation");
}

TEST(FakeCallTableDeathTest, AbortsOnProgressPastItsTotal) {
  FakeCallTable fake({}, {}, Output(1024, 1024), ResizeExpected());
  EXPECT_DEATH(fake.table()->send_progress(2, 1), "progress");
}

TEST(FakeCallTableDeathTest, ExpectFinishedAbortsOnAFailureWithoutAnError) {
  FakeCallTable fake({}, {}, Output(1024, 1024), ResizeExpected());
  fake.table()->send_complete(1);
  EXPECT_DEATH(fake.ExpectFinished(1), "without send_error");
}

}  // namespace
}  // namespace instar::ops::testing
