// Typed results and records with bad magic or fields out of range, sent by a real guest in
// both sandboxes (tests/guests/bad_results.cc), go through the checks each operation's host
// glue applies (vmm/operations: the transport's shape checks, then Validate*Result and the
// record parsers): every one is refused with a clear kGuestFailed line, and the plausible
// control result of each operation is accepted.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <tuple>

#include "abi/check.h"
#include "abi/commit.h"
#include "abi/info.h"
#include "abi/rebase.h"
#include "abi/resize.h"
#include "gtest/gtest.h"
#include "tests/guests/bad_results_image.h"
#include "tests/lib/both_sandboxes.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/launcher/sandbox_factory.h"
#include "vmm/operations/check_request.h"
#include "vmm/operations/commit_request.h"
#include "vmm/operations/info_records.h"
#include "vmm/operations/info_request.h"
#include "vmm/operations/rebase_request.h"
#include "vmm/operations/resize_request.h"

namespace instar::vmm {
namespace {

struct Case {
  uint32_t selector;      // operation * 100 + case (bad_results.cc)
  const char* refusal;    // nullptr: accepted
};

const Case kCases[] = {
    {100, nullptr},
    {101, "completed without sending a result"},
    {102, "info result names no known format"},
    {103, "impossible cluster size"},
    {104, "qcow2 fields out of range"},
    {105, "list count out of range"},
    {106, "unterminated or mis-sized string"},
    {107, "unterminated or mis-sized string"},
    {108, "unterminated or mis-sized string"},
    {109, "record counts disagree with the result"},
    {110, "bad record size"},
    {111, "bad snapshot record"},
    {112, "bad feature name record"},
    {113, "unknown record type 99"},
    {114, "bad record size"},
    {200, nullptr},
    {201, "completed without sending a result"},
    {202, "names no checkable format"},
    {203, "unknown failure"},
    {204, "unknown flags"},
    {205, "count out of range"},
    {206, "more fragmented or compressed than allocated"},
    {207, "finding batch with a bad header"},
    {208, "finding batch with a bad header"},
    {209, "check finding of unknown kind 99"},
    {210, "names unknown metadata"},
    {211, "unterminated or mis-sized string"},
    {212, "unterminated or mis-sized string"},
    {300, nullptr},
    {301, "completed without sending a result"},
    {302, "resize result names no known format"},
    {303, "resize result has unknown flags"},
    {400, nullptr},
    {401, "completed without sending a result"},
    {402, "rebase result names no known format"},
    {403, "rebase result has unknown flags"},
    {404, "copied more clusters than it compared"},
    {500, nullptr},
    {501, "completed without sending a result"},
    {502, "commit result has unknown flags"},
    {503, "commit result names no layer"},
    {504, "commit result shrank the base"},
};

// What each operation's glue declares it accepts (vmm/operations/*_request.cc).
ExpectedResult Expected(uint32_t operation) {
  switch (operation) {
    case 1: return {abi::kInfoResultMagic, sizeof(abi::InfoResult), {}};
    case 2:
      return {abi::kCheckResultMagic,
              sizeof(abi::CheckResult),
              {{abi::kCheckFindingBatchMagic, sizeof(abi::CheckFindingBatch),
                abi::kMaxFindingBatches},
               {abi::kCheckSnapshotFindingMagic, sizeof(abi::CheckSnapshotFinding),
                abi::kMaxSnapshotFindings}}};
    case 3: return {abi::kResizeResultMagic, sizeof(abi::ResizeResult), {}};
    case 4: return {abi::kRebaseResultMagic, sizeof(abi::RebaseResult), {}};
    default: return {abi::kCommitResultMagic, sizeof(abi::CommitResult), {}};
  }
}

template <class T>
T As(const std::vector<uint8_t>& bytes) {
  T v;
  std::memcpy(&v, bytes.data(), sizeof v);
  return v;
}

// The checks the operation's glue applies to a completed run, in its order.
Status Interpret(uint32_t operation, const OperationReport& report) {
  switch (operation) {
    case 1: {
      INSTAR_ASSIGN_OR_RETURN(InfoRecords records, ParseInfoRecords(report.record_buffer));
      const auto result = As<abi::InfoResult>(report.result);
      INSTAR_RETURN_IF_ERROR(ValidateInfoResult(result));
      return CheckRecordCounts(records, result);
    }
    case 2: {
      CheckOutcome out;
      INSTAR_RETURN_IF_ERROR(CollectCheckFindings(report.records, &out));
      return ValidateCheckResult(As<abi::CheckResult>(report.result));
    }
    case 3: return ValidateResizeResult(As<abi::ResizeResult>(report.result));
    case 4: return ValidateRebaseResult(As<abi::RebaseResult>(report.result));
    default: return ValidateCommitResult(As<abi::CommitResult>(report.result), 1);
  }
}

class HostileResultTest : public ::testing::TestWithParam<SandboxChoice> {};

TEST_P(HostileResultTest, EveryBrokenResultIsRefusedWithAClearLine) {
  auto sandbox = OpenSandbox(GetParam(), nullptr);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.selector);
    DeviceSet devices;
    abi::InfoConfig config{};
    config.magic = abi::kInfoConfigMagic;
    config.flags = c.selector;
    OperationLaunch launch;
    launch.operation = &images::bad_results;
    launch.SetConfig(config);
    launch.expected_result = Expected(c.selector / 100);
    launch.limits = {std::chrono::milliseconds(5000), 1000};
    const StatusOr<OperationOutcome> run = RunOperation(**sandbox, devices, launch);
    const Status status = run.ok() ? Interpret(c.selector / 100, run->report) : run.status();
    if (c.refusal == nullptr) {
      EXPECT_TRUE(status.ok()) << status.message();
      continue;
    }
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), StatusCode::kGuestFailed);
    EXPECT_NE(status.message().find(c.refusal), std::string::npos) << status.message();
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << "one line";
  }
}

INSTANTIATE_TEST_SUITE_P(BothSandboxes, HostileResultTest, SandboxBackends(),
                         SandboxTestName);

}  // namespace
}  // namespace instar::vmm
