// The commit operation. The base is the output device; the inputs are the layers above it (top
// first; the top writable when it is to be emptied) and then the base's own backing chain
// (abi/commit.h). It opens every layer with crates/chain_read, the base with image_write's
// writer for its format, grows the base if the top is larger, lets crates/commit's CommitPlan
// copy every range the layers above own into the base, flushes, and then, unless told to
// keep it, empties a qcow2 top with a second writer (qemu's make_empty: every cluster
// discarded, so the top reads through to the base). Nothing is parsed on trust: the host's
// formats and sizes are checked against what the images say.
#include "ops/commit/commit.h"

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/chain_config.h"
#include "abi/commit.h"
#include "abi/image_format.h"
#include "abi/transport.h"
#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"
#include "crates/chain_read/read_error.h"
#include "crates/commit/commit_plan.h"
#include "crates/commit/commit_target.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/step.h"
#include "crates/image_write/vmdk_writer.h"
#include "crates/image_write/write_error.h"
#include "ops/common/device_io.h"
#include "ops/common/finish_operation.h"
#include "ops/common/step_executor.h"

namespace {

using instar::abi::CommitConfig;
using instar::abi::CommitError;
using instar::abi::CommitResult;
using instar::abi::CommitUnsupported;
using instar::abi::ImageFormat;
using instar::base::Arena;
using instar::base::Fail;
using instar::chain_read::ReadError;
using instar::commit::CommitFailure;
using instar::image_write::WriteError;
using instar::ops::DeviceIo;

using CommitStatus = instar::base::Status<CommitError>;

constexpr uint32_t kMaxLayers = instar::chain_read::kMaxLayers;
// Guest clusters the top's writer discards per call (between progress checks).
constexpr uint64_t kDiscardBatch = 1u << 16;

CommitResult g_result;

// Ranges of the layers' files, as base::ImageReader callbacks over DeviceIo.
bool ReadStrict(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  return static_cast<DeviceIo*>(context)->Read(offset, length, out).ok();
}

// The base's file as it is now, past its end as zeros (qemu's file driver zero-fills short
// reads; a raw base grown by set_output_size reads zeros there).
bool ReadZeroFilled(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  auto* device = static_cast<DeviceIo*>(context);
  const uint64_t size = device->size();
  uint64_t readable = 0;
  if (offset < size) readable = size - offset < length ? size - offset : length;
  if (readable > 0 && !device->Read(offset, readable, out).ok()) return false;
  __builtin_memset(out + readable, 0, length - readable);
  return true;
}

CommitError FromRead(ReadError e, uint64_t* detail) {
  switch (e) {
    case ReadError::kIoError: return CommitError::kIoError;
    case ReadError::kCorrupt: return CommitError::kCorruptMetadata;
    case ReadError::kBadCompressedData: return CommitError::kCorruptMetadata;
    case ReadError::kQcow2HeaderInvalid: return CommitError::kHeaderRefused;
    case ReadError::kQcow2Encrypted: return CommitError::kEncrypted;
    case ReadError::kQcow2ExternalDataFile: return CommitError::kExternalDataFile;
    case ReadError::kQcow2ZstdCompression:
      *detail = static_cast<uint64_t>(CommitUnsupported::kZstdCompression);
      return CommitError::kUnsupportedLayout;
    case ReadError::kVmdkHeaderInvalid: return CommitError::kHeaderRefused;
    case ReadError::kVmdkMultiFile:
      *detail = static_cast<uint64_t>(CommitUnsupported::kVmdkMultiFile);
      return CommitError::kUnsupportedLayout;
    case ReadError::kVmdkBadFooter: return CommitError::kCorruptMetadata;
    case ReadError::kArenaTooSmall: return CommitError::kScratchTooSmall;
    case ReadError::kOutOfRange: return CommitError::kChainMismatch;
    case ReadError::kTooManyLayers: return CommitError::kBadConfig;
  }
  return CommitError::kIoError;
}

CommitError FromWrite(WriteError e, uint64_t* detail) {
  switch (e) {
    case WriteError::kIoError: return CommitError::kIoError;
    case WriteError::kScratchTooSmall: return CommitError::kScratchTooSmall;
    case WriteError::kBadHeader: return CommitError::kHeaderRefused;
    case WriteError::kImageCorruptFlag: return CommitError::kImageCorruptFlag;
    case WriteError::kDirtyImage: return CommitError::kDirtyImage;
    case WriteError::kExternalDataFile: return CommitError::kExternalDataFile;
    case WriteError::kEncrypted: return CommitError::kEncrypted;
    case WriteError::kExtendedL2:
      *detail = static_cast<uint64_t>(CommitUnsupported::kExtendedL2);
      return CommitError::kUnsupportedLayout;
    case WriteError::kCorruptL1:
    case WriteError::kCorruptL2:
    case WriteError::kCorruptRefcountTable:
    case WriteError::kCorruptRefcount:
    case WriteError::kVmdkCorrupt:
      return CommitError::kCorruptMetadata;
    case WriteError::kOutOfRange:
    case WriteError::kSizeNotSectorMultiple:
    case WriteError::kNotGrowing:
      return CommitError::kChainMismatch;
    case WriteError::kL1TooLarge: return CommitError::kL1TooLarge;
    case WriteError::kGrowUnaligned:
      *detail = static_cast<uint64_t>(CommitUnsupported::kGrowUnaligned);
      return CommitError::kUnsupportedLayout;
    case WriteError::kVmdkNotSparse:
      *detail = static_cast<uint64_t>(CommitUnsupported::kVmdkNotSparse);
      return CommitError::kUnsupportedLayout;
    case WriteError::kVmdkStreamOptimized:
      *detail = static_cast<uint64_t>(CommitUnsupported::kVmdkStreamOptimized);
      return CommitError::kUnsupportedLayout;
    case WriteError::kVmdkBadDescriptor: return CommitError::kBaseCannotGrow;
  }
  return CommitError::kIoError;
}

instar::base::Error<CommitError> LayerFailed(uint32_t layer, CommitError code, uint64_t detail) {
  g_result.failed_layer = layer;
  return Fail(code, detail);
}

instar::base::Error<CommitError> ReadFailed(uint32_t layer, instar::base::Error<ReadError> e) {
  uint64_t detail = e.detail;
  const CommitError code = FromRead(e.code, &detail);
  return LayerFailed(layer, code, detail);
}

instar::base::Error<CommitError> WriteFailed(uint32_t layer, instar::base::Error<WriteError> e) {
  uint64_t detail = e.detail;
  const CommitError code = FromWrite(e.code, &detail);
  return LayerFailed(layer, code, detail);
}

instar::base::Error<CommitError> PlanFailed(instar::base::Error<CommitFailure> e) {
  const CommitFailure& f = e.code;
  const uint32_t layer =
      f.layer == instar::commit::kLayerUnknown ? instar::abi::kCommitLayerUnknown : f.layer;
  switch (f.kind) {
    case CommitFailure::Kind::kRead: return ReadFailed(layer, {f.read_error, e.detail});
    case CommitFailure::Kind::kWrite: return WriteFailed(layer, {f.write_error, e.detail});
    case CommitFailure::Kind::kBaseCannotGrow:
      return LayerFailed(layer, CommitError::kBaseCannotGrow, e.detail);
  }
  return LayerFailed(layer, CommitError::kIoError, e.detail);
}

bool ToReadFormat(uint32_t format, instar::chain_read::ImageFormat* out) {
  switch (static_cast<ImageFormat>(format)) {
    case ImageFormat::kRaw: *out = instar::chain_read::ImageFormat::kRaw; return true;
    case ImageFormat::kQcow2: *out = instar::chain_read::ImageFormat::kQcow2; return true;
    case ImageFormat::kVmdk: *out = instar::chain_read::ImageFormat::kVmdk; return true;
    case ImageFormat::kAuto: break;
  }
  return false;
}

void ReportProgress(void* context, uint64_t done, uint64_t total) {
  static_cast<const instar::abi::CallTable*>(context)->send_progress(done, total);
}

// The layers of the chain other than the base, opened for reading: `devices` and `layers`
// are indexed by input device.
struct OpenLayers {
  DeviceIo* devices[kMaxLayers] = {};
  instar::chain_read::Layer* layers[kMaxLayers] = {};
};

// Opens input `input` (guest-view index `layer`) as the host described it; its virtual size
// must be the one the host found.
CommitStatus OpenInput(const instar::abi::CallTable* table, const instar::abi::ChainDevice& d,
                       uint32_t input, uint32_t layer, Arena& arena, OpenLayers* open) {
  instar::chain_read::ImageFormat format;
  if (!ToReadFormat(d.format, &format)) {
    return LayerFailed(layer, CommitError::kUnsupportedFormat, d.format);
  }
  void* memory = arena.Allocate(sizeof(DeviceIo), alignof(DeviceIo));
  if (memory == nullptr) return LayerFailed(layer, CommitError::kScratchTooSmall, 0);
  DeviceIo* device = new (memory) DeviceIo(table, input);
  const instar::base::ImageReader reader{device, ReadStrict, device->size()};
  auto opened = instar::chain_read::Layer::Open(format, reader, arena);
  if (!opened.ok()) return ReadFailed(layer, opened.error());
  // What the host found must still hold (raw sizes are rounded up to a sector here).
  if (format != instar::chain_read::ImageFormat::kRaw &&
      opened.value()->virtual_size() != d.virtual_size) {
    return LayerFailed(layer, CommitError::kChainMismatch, d.virtual_size);
  }
  open->devices[input] = device;
  open->layers[input] = opened.value();
  return {};
}

// The base's writer for its format, and the CommitTarget over it.
CommitStatus OpenBase(uint32_t format, DeviceIo& base, const instar::image_write::StepSink& sink,
                      Arena& arena, uint32_t layer, instar::commit::CommitTarget* target) {
  const instar::base::ImageReader strict{&base, ReadStrict, base.size()};
  const instar::base::ImageReader zero_filled{&base, ReadZeroFilled, base.size()};
  switch (static_cast<ImageFormat>(format)) {
    case ImageFormat::kQcow2: {
      auto opened = instar::image_write::Qcow2Writer::Open(strict, sink, arena);
      if (!opened.ok()) return WriteFailed(layer, opened.error());
      *target = instar::commit::CommitTarget::Qcow2(opened.value(), zero_filled);
      return {};
    }
    case ImageFormat::kVmdk: {
      auto opened = instar::image_write::VmdkWriter::Open(strict, sink, arena);
      if (!opened.ok()) return WriteFailed(layer, opened.error());
      *target = instar::commit::CommitTarget::Vmdk(opened.value(), zero_filled);
      return {};
    }
    case ImageFormat::kRaw: {
      const uint64_t size = (base.size() + 511) / 512 * 512;
      *target = instar::commit::CommitTarget::Raw(sink, zero_filled, size);
      return {};
    }
    case ImageFormat::kAuto: break;
  }
  return LayerFailed(layer, CommitError::kUnsupportedFormat, format);
}

// The top's writer refuses what it cannot write (corrupt or dirty flags, extended L2, ...):
// asked before the base changes, with a dry-run sink, in memory given back afterwards.
CommitStatus CheckTopWritable(const instar::abi::CallTable* table, Arena& arena) {
  const uint64_t mark = arena.used();
  DeviceIo top(table, 0);
  const instar::base::ImageReader reader{&top, ReadStrict, top.size()};
  auto opened = instar::image_write::Qcow2Writer::Open(reader, instar::image_write::StepSink{},
                                                       arena);
  arena.Rewind(mark);
  if (!opened.ok()) return WriteFailed(0, opened.error());
  return {};
}

// qemu's make_empty for a qcow2 top: every guest cluster discarded (read through to the
// base), in batches, then flushed.
CommitStatus EmptyTop(const instar::abi::CallTable* table, Arena& arena) {
  DeviceIo top(table, 0);
  instar::ops::StepExecutor executor(table, top, arena);
  if (!executor.ready()) return LayerFailed(0, CommitError::kScratchTooSmall, 0);
  const instar::base::ImageReader reader{&top, ReadStrict, top.size()};
  auto opened = instar::image_write::Qcow2Writer::Open(reader, executor.sink(), arena);
  if (!opened.ok()) return WriteFailed(0, opened.error());
  instar::image_write::Qcow2Writer& writer = *opened.value();
  const uint64_t clusters = writer.guest_clusters();
  for (uint64_t first = 0; first < clusters; first += kDiscardBatch) {
    const uint64_t count = clusters - first < kDiscardBatch ? clusters - first : kDiscardBatch;
    auto discarded = writer.DiscardClusters(first, count);
    if (!discarded.ok()) return WriteFailed(0, discarded.error());
  }
  auto flushed = writer.Flush();
  if (!flushed.ok()) return WriteFailed(0, flushed.error());
  g_result.writes += executor.steps_applied();
  g_result.flags |= instar::abi::kCommitTopEmptied;
  return {};
}

CommitStatus Commit(const instar::abi::CallTable* table, Arena& arena, const CommitConfig& config) {
  const instar::abi::ChainConfig* chain = table->get_chain_config();
  const uint32_t above = config.layers_above_base;
  const uint32_t below = config.layers_below_base;
  if ((config.flags & ~(instar::abi::kCommitEmptyTop | instar::abi::kCommitProgress)) != 0 ||
      above == 0 || above >= kMaxLayers || below >= kMaxLayers - above ||
      chain == nullptr || chain->magic != instar::abi::kChainConfigMagic ||
      chain->device_count != above + below || chain->has_output != 1 ||
      table->get_input_device_count() != above + below) {
    return Fail(CommitError::kBadConfig);
  }
  OpenLayers open;
  // Guest-view index of input i: the base sits between the layers above and below it.
  for (uint32_t i = 0; i < above + below; ++i) {
    TRY_STATUS(OpenInput(table, chain->input[i], i, i < above ? i : i + 1, arena, &open));
  }
  auto above_chain = instar::chain_read::Chain::Of(open.layers, above);
  if (!above_chain.ok()) return ReadFailed(0, above_chain.error());
  instar::chain_read::Chain below_chain;
  if (below > 0) {
    auto opened = instar::chain_read::Chain::Of(open.layers + above, below);
    if (!opened.ok()) return ReadFailed(above + 1, opened.error());
    below_chain = opened.value();
  }

  DeviceIo base(table, instar::abi::kOutputDevice);
  instar::ops::StepExecutor executor(table, base, arena);
  uint8_t* buffer = arena.Allocate(instar::commit::kCommitBatchBytes, 4096);
  if (!executor.ready() || buffer == nullptr) {
    return LayerFailed(above, CommitError::kScratchTooSmall, 0);
  }
  const bool empty_top = (config.flags & instar::abi::kCommitEmptyTop) != 0;
  if (empty_top) TRY_STATUS(CheckTopWritable(table, arena));
  instar::commit::CommitTarget target;
  TRY_STATUS(OpenBase(chain->output.format, base, executor.sink(), arena, above, &target));
  g_result.base_old_size = target.virtual_size();
  g_result.base_new_size = target.virtual_size();

  instar::commit::CommitLayers layers;
  layers.above = &above_chain.value();
  layers.base = &target;
  layers.below = below > 0 ? &below_chain : nullptr;
  instar::commit::CommitProgress progress;
  if ((config.flags & instar::abi::kCommitProgress) != 0) {
    progress = {const_cast<instar::abi::CallTable*>(table), ReportProgress};
  }
  instar::commit::CommitPlan plan(layers, buffer, instar::commit::kCommitBatchBytes, progress);
  auto grown = plan.GrowBase();
  g_result.writes = executor.steps_applied();
  if (!grown.ok()) return PlanFailed(grown.error());
  g_result.base_new_size = target.virtual_size();
  if (plan.stats().base_grown) g_result.flags |= instar::abi::kCommitBaseGrown;
  // The base read by its own tables, for its compressed clusters; opened after a grow, which
  // may have moved them.
  instar::chain_read::Layer* base_layer = nullptr;
  if (target.kind() != instar::commit::TargetKind::kRaw) {
    const instar::base::ImageReader reader{&base, ReadStrict, base.size()};
    instar::chain_read::ImageFormat format;
    if (!ToReadFormat(chain->output.format, &format)) {
      return LayerFailed(above, CommitError::kUnsupportedFormat, chain->output.format);
    }
    auto opened = instar::chain_read::Layer::Open(format, reader, arena);
    if (!opened.ok()) return ReadFailed(above, opened.error());
    base_layer = opened.value();
  }
  auto copied = plan.Copy(base_layer);
  g_result.writes = executor.steps_applied();
  g_result.bytes_committed = plan.stats().bytes_committed;
  if (!copied.ok()) return PlanFailed(copied.error());

  if (empty_top) {
    arena.Reset();  // the layers, the base's writer and the buffer are done with
    TRY_STATUS(EmptyTop(table, arena));
  }
  return {};
}

}  // namespace

int instar::ops::RunCommit(const instar::abi::CallTable* table, Arena& scratch) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  uint32_t size = 0;
  const auto* config = static_cast<const CommitConfig*>(table->get_operation_config(&size));
  g_result = {};
  g_result.magic = instar::abi::kCommitResultMagic;
  const CommitStatus status =
      size >= sizeof(CommitConfig) && config->magic == instar::abi::kCommitConfigMagic
          ? Commit(table, scratch, *config)
          : CommitStatus(Fail(CommitError::kBadConfig));
  return FinishOperation(table, table->send_commit_result, &g_result, status);
}
