// The info operation end to end on the host (RunInfo over a ops::testing::FakeCallTable): the
// input's prefix chooses the request, the rest is the image and, with the extents flag, the extent
// files a descriptor names. Asserts the host's invariants (the fake) and that everything the host
// would parse (the records buffer, the result, their counts) passes its checks. Prefix: [0] format,
// [1] bit 0 extents attached.
#include <cstddef>
#include <cstdint>

#include "abi/info.h"
#include "ops/info/info.h"
#include "ops/testing/fake_call_table.h"
#include "ops/testing/operation_fuzz.h"
#include "vmm/operations/info_records.h"
#include "vmm/operations/info_request.h"

using namespace instar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ops::testing::FuzzInput input =
      ops::testing::SplitFuzzInput({data, size}, /*prefix_bytes=*/8, /*max_devices=*/5);
  abi::InfoConfig config{};
  config.magic = abi::kInfoConfigMagic;
  config.requested_format = input.Byte(0) % 4;
  const bool extents = (input.Byte(1) & 1) != 0;
  config.flags = extents ? abi::kInfoConfigExtentsAttached : 0;

  std::vector<ops::testing::FakeDevice> devices;
  for (size_t i = 0; i < (extents ? input.devices.size() : 1); ++i) {
    devices.push_back(ops::testing::FakeDevice::Of(input.devices[i]));
    if (i != 0) devices.back().role = abi::DeviceRole::kExtent;
  }
  ops::testing::FakeCallTable fake(ops::testing::ConfigBytes(config),
                     std::move(devices), std::nullopt,
                     {abi::kInfoResultMagic, sizeof(abi::InfoResult), {}});
  base::Arena scratch = ops::testing::FreshScratch();
  ops::testing::ExpectOutcome("info", fake, ops::RunInfo(fake.table(), scratch),
                              abi::kInfoErrorCount);

  auto records = vmm::ParseInfoRecords(fake.report().record_buffer);
  if (!records.ok()) {
    ops::testing::Violation("records the host refuses: " + records.status().message());
  }
  const auto result = ops::testing::TypedResult<abi::InfoResult>(fake.report());
  if (fake.report().error.has_value() == result.has_value()) {
    ops::testing::Violation("info must send a result exactly when it succeeds");
  }
  if (!result) return 0;
  if (const auto valid = vmm::ValidateInfoResult(*result); !valid.ok()) {
    ops::testing::Violation("an info result the host refuses: " + valid.message());
  }
  if (const auto counts = vmm::CheckRecordCounts(*records, *result); !counts.ok()) {
    ops::testing::Violation("records that disagree with the result: " + counts.message());
  }
  return 0;
}
