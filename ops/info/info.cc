// The info operation: reads input device 0, probes or checks its format, hands it to the
// format's describer, and sends its records and InfoResult, or an InfoError through
// send_error. Everything it reads is hostile: each read is bounded by the device size and a
// fixed cap.
#include "ops/info/info.h"

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/image_format.h"
#include "abi/info.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/result.h"
#include "crates/probe/probe.h"
#include "ops/common/device_io.h"
#include "ops/common/finish_operation.h"
#include "ops/info/info_context.h"

namespace {

using instar::abi::ImageFormat;
using instar::abi::InfoError;
using instar::base::ByteView;
using instar::base::Fail;
using instar::ops::info::InfoContext;
using instar::ops::info::InfoStatus;

constexpr uint64_t kSector = 512;

instar::abi::InfoResult g_result;

InfoStatus Describe(InfoContext& ctx) {
  ByteView head;
  TRY(head, ctx.ReadPadded(0, instar::probe::kProbeBytes));
  // The probe sees only the bytes the file has.
  const ByteView probe_bytes =
      head.Sub(0, ctx.image.size() < head.size() ? ctx.image.size() : head.size());

  const auto requested = static_cast<ImageFormat>(ctx.config.requested_format);
  ImageFormat format = requested;
  if (requested == ImageFormat::kAuto) {
    const instar::probe::Format probed = instar::probe::ProbeFormat(probe_bytes);
    switch (probed) {
      case instar::probe::Format::kRaw: format = ImageFormat::kRaw; break;
      case instar::probe::Format::kQcow2: format = ImageFormat::kQcow2; break;
      case instar::probe::Format::kVmdk: format = ImageFormat::kVmdk; break;
      default: return Fail(InfoError::kUnsupportedFormat, static_cast<uint64_t>(probed));
    }
  }
  switch (format) {
    case ImageFormat::kQcow2: return DescribeQcow2(ctx, probe_bytes);
    case ImageFormat::kVmdk: return DescribeVmdk(ctx, head);
    case ImageFormat::kRaw:
      ctx.result.format = static_cast<uint32_t>(ImageFormat::kRaw);
      // The block layer works in whole sectors: a raw image's size rounds up to one.
      ctx.result.virtual_size = instar::base::DivRoundUp(ctx.image.size(), kSector) * kSector;
      return {};
    case ImageFormat::kAuto: break;
  }
  return Fail(InfoError::kBadConfig, ctx.config.requested_format);
}

}  // namespace

int instar::ops::RunInfo(const instar::abi::CallTable* table, instar::base::Arena& scratch) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  const auto* config = static_cast<const instar::abi::InfoConfig*>(
      table->get_operation_config(nullptr));
  g_result = {};
  g_result.magic = instar::abi::kInfoResultMagic;
  instar::ops::DeviceIo image(table, 0);
  instar::ops::info::RecordWriter records(table, scratch);
  InfoContext ctx{table, *config, image, scratch, g_result, records};
  InfoStatus status = config->magic == instar::abi::kInfoConfigMagic
                                ? Describe(ctx)
                                : InfoStatus(Fail(InfoError::kBadConfig));
  // Records go first: on a refusal they carry what the message needs (feature names).
  const InfoStatus flushed = records.Flush();
  if (status.ok() && !flushed.ok()) status = flushed;
  return FinishOperation(table, table->send_info_result, status.ok() ? &g_result : nullptr,
                         status);
}
