// The commit operation end to end on the host (RunCommit over a ops::testing::FakeCallTable): the
// input's prefix chooses the request, its files are the chain top first; the one at the prefix's
// base index is the base (the output device), the others are inputs described by the info operation
// as the host's chain discovery describes them (the top writable only when it is emptied). Asserts
// the host's invariants (the fake), a result the host accepts, and for qcow2 files it writes that
// crates/check called clean, that they are still clean afterwards. Prefix: [0] bit 0 empty the top,
// bit 1 -p, [1] base index (1 ..).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "abi/commit.h"
#include "ops/commit/commit.h"
#include "ops/testing/fake_call_table.h"
#include "ops/testing/operation_fuzz.h"
#include "vmm/operations/commit_request.h"

using namespace instar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ops::testing::FuzzInput input =
      ops::testing::SplitFuzzInput({data, size}, /*prefix_bytes=*/8, /*max_devices=*/6);
  if (input.devices.size() < 2) return 0;
  const auto layers = static_cast<uint32_t>(input.devices.size());
  const uint32_t above = 1 + input.Byte(1) % (layers - 1);
  const bool empty_top = (input.Byte(0) & 1) != 0;

  abi::CommitConfig config{};
  config.magic = abi::kCommitConfigMagic;
  config.flags = (empty_top ? abi::kCommitEmptyTop : 0) |
                 ((input.Byte(0) & 2) != 0 ? abi::kCommitProgress : 0);
  config.layers_above_base = above;
  config.layers_below_base = layers - above - 1;

  std::vector<ops::testing::FakeDevice> inputs;
  ops::testing::FakeDevice base;
  for (uint32_t i = 0; i < layers; ++i) {
    ops::testing::FakeDevice layer = ops::testing::DescribedLayer(input.devices[i]);
    if (i == above) {
      base = std::move(layer);
    } else {
      inputs.push_back(std::move(layer));
    }
  }
  const uint64_t top_virtual = inputs[0].virtual_size;
  inputs[0].role = abi::DeviceRole::kImage;
  if (empty_top) {
    inputs[0].writable = true;
    inputs[0].write_limit = vmm::CommitTopWriteLimit(inputs[0].size, top_virtual);
  }
  base.writable = true;
  base.write_limit = vmm::CommitBaseWriteLimit(base.size, top_virtual);
  const bool base_was_clean = ops::testing::Qcow2Clean(base);
  const bool top_was_clean = empty_top && ops::testing::Qcow2Clean(inputs[0]);
  const bool base_qcow2 = base.format == abi::ImageFormat::kQcow2;
  const bool top_qcow2 = inputs[0].format == abi::ImageFormat::kQcow2;

  ops::testing::FakeCallTable fake(ops::testing::ConfigBytes(config),
                     std::move(inputs), std::move(base),
                     {abi::kCommitResultMagic, sizeof(abi::CommitResult), {}});
  base::Arena scratch = ops::testing::FreshScratch();
  ops::testing::ExpectOutcome("commit", fake, ops::RunCommit(fake.table(), scratch),
                              abi::kCommitErrorCount);
  const auto result = ops::testing::TypedResult<abi::CommitResult>(fake.report());
  if (!result) ops::testing::Violation("commit sent no result");
  if (const auto valid = vmm::ValidateCommitResult(*result, layers); !valid.ok()) {
    ops::testing::Violation("a commit result the host refuses: " + valid.message());
  }
  if (base_qcow2) ops::testing::ExpectStillClean(base_was_clean, *fake.output(), "the base");
  if (top_qcow2) ops::testing::ExpectStillClean(top_was_clean, fake.inputs()[0], "the top");
  ops::testing::ExpectWritesFit(base_qcow2 && base_was_clean && (!empty_top || top_was_clean),
                                fake.report(), "the chain");
  return 0;
}
