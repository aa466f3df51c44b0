// The check operation end to end on the host (RunCheck over a ops::testing::FakeCallTable): the
// input's prefix chooses the request, the rest is the image. Asserts the host's invariants (the
// fake), that the findings and the result pass the host's checks, and for a repair of a qcow2 image
// crates/check called clean, that it is still clean afterwards. Prefix: [0] format, [1] repair
// (none, leaks, all), [2] bit 0 backing checked, [3] clusters per pass / 64 (0: any).
#include <cstddef>
#include <cstdint>

#include "abi/check.h"
#include "ops/check/check.h"
#include "ops/testing/fake_call_table.h"
#include "ops/testing/operation_fuzz.h"
#include "vmm/operations/check_request.h"

using namespace instar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ops::testing::FuzzInput input =
      ops::testing::SplitFuzzInput({data, size}, /*prefix_bytes=*/8, /*max_devices=*/1);
  abi::CheckConfig config{};
  config.magic = abi::kCheckConfigMagic;
  config.requested_format = input.Byte(0) % 4;
  config.repair = input.Byte(1) % 3;
  config.flags = (input.Byte(2) & 1) != 0 ? abi::kCheckBackingChecked : 0;
  config.max_clusters_per_pass = uint64_t{input.Byte(3)} * 64;

  ops::testing::FakeDevice image = ops::testing::FakeDevice::Of(input.devices[0]);
  if (config.repair != static_cast<uint32_t>(abi::CheckRepair::kNone)) {
    image.writable = true;
    image.write_limit = image.size + abi::RepairGrowthLimit(image.size);
  }
  const bool was_clean = image.writable && ops::testing::Qcow2Clean(image);
  std::vector<ops::testing::FakeDevice> devices;
  devices.push_back(std::move(image));
  ops::testing::FakeCallTable fake(
      ops::testing::ConfigBytes(config), std::move(devices),
      std::nullopt,
      {abi::kCheckResultMagic,
       sizeof(abi::CheckResult),
       {{abi::kCheckFindingBatchMagic, sizeof(abi::CheckFindingBatch), abi::kMaxFindingBatches},
        {abi::kCheckSnapshotFindingMagic, sizeof(abi::CheckSnapshotFinding),
         abi::kMaxSnapshotFindings}}});
  base::Arena scratch = ops::testing::FreshScratch();
  ops::testing::ExpectOutcome("check", fake, ops::RunCheck(fake.table(), scratch),
                              abi::kCheckErrorCount);

  vmm::CheckOutcome outcome;
  if (const auto findings = vmm::CollectCheckFindings(fake.report().records, &outcome);
      !findings.ok()) {
    ops::testing::Violation("findings the host refuses: " + findings.message());
  }
  const auto result = ops::testing::TypedResult<abi::CheckResult>(fake.report());
  if (fake.report().error.has_value() == result.has_value()) {
    ops::testing::Violation("check must send a result exactly when it succeeds");
  }
  if (result) {
    if (const auto valid = vmm::ValidateCheckResult(*result); !valid.ok()) {
      ops::testing::Violation("a check result the host refuses: " + valid.message());
    }
  }
  ops::testing::ExpectStillClean(was_clean, fake.inputs()[0], "the repaired image");
  ops::testing::ExpectWritesFit(was_clean, fake.report(), "the repaired image");
  return 0;
}
