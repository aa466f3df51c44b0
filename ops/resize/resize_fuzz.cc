// The resize operation end to end on the host (RunResize over a ops::testing::FakeCallTable): the
// input's prefix chooses the request, the rest is the image. Asserts the host's invariants (the
// fake), a result the host accepts, and for a qcow2 image that crates/check called clean, that it
// is still clean afterwards. Prefix: [0] format, [1] size mode, [2] preallocation, [3] bit 0
// --shrink, [4] bit 0 backing checked, [8, 16) size, [16, 24) backing file's size.
#include <cstddef>
#include <cstdint>
#include <span>

#include "abi/resize.h"
#include "ops/resize/resize.h"
#include "ops/testing/fake_call_table.h"
#include "ops/testing/operation_fuzz.h"
#include "vmm/operations/resize_request.h"

using namespace instar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ops::testing::FuzzInput input =
      ops::testing::SplitFuzzInput({data, size}, /*prefix_bytes=*/24, /*max_devices=*/1);
  vmm::ResizeRequest request;
  request.format = static_cast<abi::ImageFormat>(input.Byte(0) % 4);
  request.size_mode = static_cast<abi::ResizeSizeMode>(input.Byte(1) % 3);
  request.preallocation = static_cast<abi::Preallocation>(input.Byte(2) % 4);
  request.allow_shrink = (input.Byte(3) & 1) != 0;
  request.size = input.U64(8);

  std::optional<uint64_t> backing_size;
  if ((input.Byte(4) & 1) != 0) backing_size = input.U64(16);
  const abi::ResizeConfig config = vmm::MakeResizeConfig(request, backing_size);

  ops::testing::FakeDevice image = ops::testing::FakeDevice::Of(input.devices[0]);
  image.writable = true;
  image.write_limit = vmm::ResizeWriteLimit(image.size, request);
  image.format = request.format;
  const bool was_clean = ops::testing::Qcow2Clean(image);

  ops::testing::FakeCallTable fake(ops::testing::ConfigBytes(config), {},
                     std::move(image), {abi::kResizeResultMagic, sizeof(abi::ResizeResult), {}});
  base::Arena scratch = ops::testing::FreshScratch();
  ops::testing::ExpectOutcome("resize", fake, ops::RunResize(fake.table(), scratch),
                              abi::kResizeErrorCount);
  const auto result = ops::testing::TypedResult<abi::ResizeResult>(fake.report());
  if (!result) ops::testing::Violation("resize sent no result");
  if (!vmm::ValidateResizeResult(*result).ok()) {
    ops::testing::Violation("a resize result the host refuses");
  }
  if (result->format == static_cast<uint32_t>(abi::ImageFormat::kQcow2)) {
    ops::testing::ExpectStillClean(was_clean, *fake.output(), "the resized image");
    ops::testing::ExpectWritesFit(was_clean, fake.report(), "the resized image");
  }
  return 0;
}
