// The rebase operation end to end on the host (RunRebase over a ops::testing::FakeCallTable): the
// input's prefix chooses the request, its first file is the overlay (the output device) and the
// others are the backing layers, attached read-only and described by the info operation as the
// host's chain discovery describes them. Asserts the host's invariants (the fake), a result the
// host accepts, and for a qcow2 overlay crates/check called clean, that it is still clean
// afterwards. Prefix: [0] overlay format, [1] bit 0 -u, bit 1 -p, [2] old chain length, [3] first
// slot of the new chain, [4] its length (0: none attached), [5] new backing name (none, a file
// name, 1023 bytes), [6] -F (none, qcow2, raw, vmdk).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "abi/rebase.h"
#include "ops/rebase/rebase.h"
#include "ops/testing/fake_call_table.h"
#include "ops/testing/operation_fuzz.h"
#include "vmm/operations/rebase_request.h"

using namespace instar;

namespace {

void CopyName(const std::string& name, char* out, uint32_t* length) {
  std::memcpy(out, name.data(), name.size());
  *length = static_cast<uint32_t>(name.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ops::testing::FuzzInput input =
      ops::testing::SplitFuzzInput({data, size}, /*prefix_bytes=*/8, /*max_devices=*/6);
  std::vector<ops::testing::FakeDevice> layers;
  for (size_t i = 1; i < input.devices.size(); ++i) {
    layers.push_back(ops::testing::DescribedLayer(input.devices[i]));
  }
  const auto inputs = static_cast<uint32_t>(layers.size());

  abi::RebaseConfig config{};
  config.magic = abi::kRebaseConfigMagic;
  config.requested_format = input.Byte(0) % 4;
  const bool unsafe = (input.Byte(1) & 1) != 0;
  config.flags = (unsafe ? abi::kRebaseUnsafe : 0) |
                 ((input.Byte(1) & 2) != 0 ? abi::kRebaseProgress : 0);
  config.old_chain_count = std::min<uint32_t>(input.Byte(2), inputs);
  config.new_chain_first = std::min<uint32_t>(input.Byte(3), inputs);
  config.new_chain_count = std::min<uint32_t>(input.Byte(4), inputs - config.new_chain_first);
  if (config.new_chain_count != 0) {
    config.flags |= abi::kRebaseNewChainAttached;
    config.new_format = static_cast<uint32_t>(layers[config.new_chain_first].format);
  }
  const std::string names[] = {"", "backing.img", std::string(abi::kRebaseNameBytes - 1, 'b')};
  const std::string& name = names[input.Byte(5) % 3];
  if (!name.empty()) config.flags |= abi::kRebaseHasBacking;
  CopyName(name, config.new_backing_name, &config.new_backing_name_length);
  const std::string formats[] = {"", "qcow2", "raw", "vmdk"};
  const std::string& format_name = formats[input.Byte(6) % 4];
  if (!format_name.empty()) config.flags |= abi::kRebaseHasFormat;
  CopyName(format_name, config.new_format_name, &config.new_format_name_length);

  ops::testing::FakeDevice overlay = ops::testing::FakeDevice::Of(input.devices[0]);
  const std::optional<abi::InfoResult> info = ops::testing::DescribeImage(overlay.bytes);
  overlay.writable = true;
  overlay.write_limit =
      vmm::RebaseWriteLimit(overlay.size, info ? info->virtual_size : 0, unsafe);
  overlay.format = static_cast<abi::ImageFormat>(config.requested_format);
  const bool was_clean = ops::testing::Qcow2Clean(overlay);

  ops::testing::FakeCallTable fake(ops::testing::ConfigBytes(config),
                     std::move(layers), std::move(overlay),
                     {abi::kRebaseResultMagic, sizeof(abi::RebaseResult), {}});
  base::Arena scratch = ops::testing::FreshScratch();
  ops::testing::ExpectOutcome("rebase", fake, ops::RunRebase(fake.table(), scratch),
                              abi::kRebaseErrorCount);
  const auto result = ops::testing::TypedResult<abi::RebaseResult>(fake.report());
  if (!result) ops::testing::Violation("rebase sent no result");
  if (const auto valid = vmm::ValidateRebaseResult(*result); !valid.ok()) {
    ops::testing::Violation("a rebase result the host refuses: " + valid.message());
  }
  if (result->format == static_cast<uint32_t>(abi::ImageFormat::kQcow2)) {
    ops::testing::ExpectStillClean(was_clean, *fake.output(), "the rebased overlay");
    ops::testing::ExpectWritesFit(was_clean, fake.report(), "the rebased overlay");
  }
  return 0;
}
