// The rebase operation: the overlay is the output device (read/write); the old and new backing
// chains are read-only inputs (RebaseConfig names their slots, top first). It probes or checks
// the overlay's format and refuses what qemu-img would refuse before it writes anything. A
// safe rebase then copies into the overlay, through the crash-safe image writer, the old
// chain's content wherever it differs from the new chain's (crates/rebase CopyDifferences).
// Last, it rewrites the backing file reference: the qcow2 header cluster as qemu rewrites it,
// or the VMDK descriptor's parent lines. The RebaseResult is sent even on failure.
#include "ops/rebase/rebase.h"

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/image_format.h"
#include "abi/rebase.h"
#include "abi/transport.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/vmdk_writer.h"
#include "crates/probe/probe.h"
#include "crates/qcow2/header.h"
#include "crates/rebase/new_backing.h"
#include "crates/rebase/overlay_target.h"
#include "crates/rebase/plan_error.h"
#include "crates/rebase/qcow2_header_update.h"
#include "crates/rebase/safe_copy.h"
#include "crates/rebase/vmdk_parent_update.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"
#include "ops/common/device_io.h"
#include "ops/common/finish_operation.h"
#include "ops/common/step_executor.h"

namespace {

using instar::abi::ImageFormat;
using instar::abi::RebaseConfig;
using instar::abi::RebaseError;
using instar::abi::RebaseResult;
using instar::base::Arena;
using instar::base::ByteView;
using instar::base::Fail;
using instar::ops::DeviceIo;
using instar::rebase::PlanError;

using RebaseStatus = instar::base::Status<RebaseError>;

constexpr uint64_t kSector = 512;

RebaseResult g_result;

RebaseError FromPlan(PlanError e) {
  switch (e) {
    case PlanError::kIoError: return RebaseError::kIoError;
    case PlanError::kHeaderNoSpace: return RebaseError::kHeaderNoSpace;
    case PlanError::kBackingPathTooLong: return RebaseError::kBackingPathTooLong;
    case PlanError::kRawExternalData: return RebaseError::kRawExternalData;
    case PlanError::kImageCorruptFlag: return RebaseError::kImageCorruptFlag;
    case PlanError::kDirtyImage: return RebaseError::kDirtyImage;
    case PlanError::kEncrypted: return RebaseError::kEncrypted;
    case PlanError::kOverlayCorrupt: return RebaseError::kOverlayCorrupt;
    case PlanError::kDescriptorTooLarge: return RebaseError::kDescriptorTooLarge;
    case PlanError::kScratchTooSmall: return RebaseError::kScratchTooSmall;
    case PlanError::kInternalOverflow: return RebaseError::kInternalOverflow;
  }
  return RebaseError::kIoError;
}

// Reads [offset, offset+length) clipped to the device into the arena; bytes past the end of
// the device are zeros (as qemu reads a header cluster the file does not fill).
instar::base::Result<ByteView, RebaseError> ReadZeroFilled(DeviceIo& device, Arena& arena,
                                                           uint64_t offset, uint64_t length) {
  uint8_t* buffer = arena.Allocate(length, kSector);
  if (buffer == nullptr) return Fail(RebaseError::kScratchTooSmall);
  uint64_t present = 0;
  if (offset < device.size()) present = device.size() - offset < length ? device.size() - offset : length;
  if (present != 0 && !device.Read(offset, present, buffer).ok()) {
    return Fail(RebaseError::kIoError);
  }
  for (uint64_t i = present; i < length; ++i) buffer[i] = 0;
  return ByteView(buffer, length);
}

instar::rebase::NewBacking NewBackingOf(const RebaseConfig& config) {
  instar::rebase::NewBacking backing;
  if ((config.flags & instar::abi::kRebaseHasBacking) != 0) {
    backing.name = {reinterpret_cast<const uint8_t*>(config.new_backing_name),
                    config.new_backing_name_length};
    if ((config.flags & instar::abi::kRebaseHasFormat) != 0) {
      backing.format = {reinterpret_cast<const uint8_t*>(config.new_format_name),
                        config.new_format_name_length};
    }
  }
  return backing;
}

// The last write of every rebase: the backing file reference (detail 0 for the host).
RebaseStatus WriteHeader(DeviceIo& device, uint64_t offset, ByteView bytes) {
  if (!device.Write(offset, bytes.size(), bytes.data()).ok()) {
    return Fail(RebaseError::kWriteFailed, 0);
  }
  ++g_result.writes;
  return {};
}

// Builds the new header cluster from the one on disk; writes it when `write` (else it only
// checks that it can be built).
RebaseStatus RebaseQcow2(DeviceIo& overlay, Arena& arena, const RebaseConfig& config,
                         bool write) {
  // 4 KiB first: enough to learn the cluster size (ParseHeader's contract).
  constexpr uint64_t kFirstRead = 4096;
  ByteView head;
  TRY(head, ReadZeroFilled(overlay, arena, 0, kFirstRead));
  auto parsed = instar::qcow2::ParseHeader(head);
  if (parsed.ok() && parsed.value().cluster_size != head.size()) {
    TRY(head, ReadZeroFilled(overlay, arena, 0, parsed.value().cluster_size));
    parsed = instar::qcow2::ParseHeader(head);
  }
  if (!parsed.ok()) {
    return Fail(RebaseError::kQcow2HeaderRefused, static_cast<uint64_t>(parsed.error().code));
  }
  const instar::qcow2::Header& header = parsed.value();
  uint8_t* cluster = arena.Allocate(header.cluster_size, kSector);
  if (cluster == nullptr) return Fail(RebaseError::kScratchTooSmall);
  auto built = instar::rebase::BuildQcow2Header(head, header, NewBackingOf(config), cluster);
  if (!built.ok()) return Fail(FromPlan(built.error().code), built.error().detail);
  if (!write) return {};
  return WriteHeader(overlay, 0, ByteView(cluster, header.cluster_size));
}

// Memory for a safe rebase, carved from the arena in this order: the step executor's
// buffers, the two comparison buffers (qemu-img compares 2 MiB at a time too), the chain
// layers' caches (an equal share of kLayerRoom each, at most chain_read's default), and the
// rest for the overlay writer's tables and caches.
constexpr uint64_t kCompareBytes = 2u << 20;
constexpr uint64_t kLayerRoom = 3u << 20;
constexpr uint64_t kMinLayerBudget = 64u << 10;

RebaseError FromWrite(instar::image_write::WriteError e) {
  using instar::image_write::WriteError;
  switch (e) {
    case WriteError::kIoError: return RebaseError::kWriteFailed;
    case WriteError::kScratchTooSmall: return RebaseError::kScratchTooSmall;
    case WriteError::kBadHeader: return RebaseError::kQcow2HeaderRefused;
    case WriteError::kImageCorruptFlag: return RebaseError::kImageCorruptFlag;
    case WriteError::kDirtyImage: return RebaseError::kDirtyImage;
    case WriteError::kExternalDataFile: return RebaseError::kExternalDataFile;
    case WriteError::kEncrypted: return RebaseError::kEncrypted;
    case WriteError::kExtendedL2: return RebaseError::kExtendedL2;
    case WriteError::kCorruptL1:
    case WriteError::kCorruptL2:
    case WriteError::kCorruptRefcountTable:
    case WriteError::kVmdkCorrupt:
      return RebaseError::kOverlayCorrupt;
    case WriteError::kCorruptRefcount: return RebaseError::kRefcountExhausted;
    // Grow and range errors: the copy loop never grows and stays inside the overlay.
    case WriteError::kOutOfRange:
    case WriteError::kSizeNotSectorMultiple:
    case WriteError::kNotGrowing:
    case WriteError::kL1TooLarge:
    case WriteError::kGrowUnaligned:
      return RebaseError::kInternalOverflow;
    case WriteError::kVmdkNotSparse:
    case WriteError::kVmdkStreamOptimized:
    case WriteError::kVmdkBadDescriptor:
      return RebaseError::kVmdkUnsupported;
  }
  return RebaseError::kIoError;
}

bool ReadDevice(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  return static_cast<DeviceIo*>(context)->Read(offset, length, out).ok();
}

// Opens the layers at input slots [first, first + count) as one chain (top first).
instar::base::Result<instar::chain_read::Chain, RebaseError> OpenChain(
    const instar::abi::CallTable* table, Arena& arena, uint32_t first, uint32_t count,
    uint64_t budget, instar::chain_read::Layer** layers) {
  const instar::abi::ChainConfig* chain_config = table->get_chain_config();
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t slot = first + i;
    instar::chain_read::ImageFormat format;
    switch (static_cast<ImageFormat>(chain_config->input[slot].format)) {
      case ImageFormat::kRaw: format = instar::chain_read::ImageFormat::kRaw; break;
      case ImageFormat::kQcow2: format = instar::chain_read::ImageFormat::kQcow2; break;
      case ImageFormat::kVmdk: format = instar::chain_read::ImageFormat::kVmdk; break;
      default: return Fail(RebaseError::kBadConfig, slot);
    }
    void* memory = arena.Allocate(sizeof(DeviceIo), alignof(DeviceIo));
    if (memory == nullptr) return Fail(RebaseError::kScratchTooSmall);
    auto* device = new (memory) DeviceIo(table, slot);
    const instar::base::ImageReader reader{device, ReadDevice, device->size()};
    auto opened = instar::chain_read::Layer::Open(format, reader, arena, budget);
    if (!opened.ok()) {
      if (opened.error().code == instar::chain_read::ReadError::kArenaTooSmall) {
        return Fail(RebaseError::kScratchTooSmall);
      }
      return Fail(RebaseError::kChainUnreadable, slot);
    }
    layers[i] = opened.value();
  }
  auto chain = instar::chain_read::Chain::Of(layers, count);
  if (!chain.ok()) return Fail(RebaseError::kBadConfig);
  return chain.value();
}

void ReportProgress(void* context, uint64_t done, uint64_t total) {
  static_cast<const instar::abi::CallTable*>(context)->send_progress(done, total);
}

// The data half of a safe rebase: old-chain content into the overlay where the chains
// differ, through the overlay's writer, flushed before the caller rewrites the header.
RebaseStatus CopyDifferences(const instar::abi::CallTable* table, DeviceIo& overlay,
                             Arena& arena, ImageFormat format, const RebaseConfig& config) {
  instar::ops::StepExecutor executor(table, overlay, arena);
  if (!executor.ready()) return Fail(RebaseError::kScratchTooSmall);
  instar::rebase::CopyBuffers buffers;
  buffers.bytes = kCompareBytes;
  buffers.old_content = arena.Allocate(kCompareBytes, 4096);
  buffers.new_content = arena.Allocate(kCompareBytes, 4096);
  if (buffers.new_content == nullptr) return Fail(RebaseError::kScratchTooSmall);

  // A new chain that is a suffix of the old one (NEW is in the overlay's own chain, as
  // qemu-img finds it) shares its layers.
  const bool has_new = (config.flags & instar::abi::kRebaseNewChainAttached) != 0 &&
                       config.new_chain_count != 0;
  const uint32_t old_end = config.old_chain_first + config.old_chain_count;
  const bool new_is_suffix = has_new && config.new_chain_first >= config.old_chain_first &&
                             config.new_chain_first < old_end &&
                             config.new_chain_first + config.new_chain_count == old_end;
  const uint32_t layer_count = config.old_chain_count + (has_new && !new_is_suffix ? config.new_chain_count : 0);
  if (config.old_chain_count > instar::chain_read::kMaxLayers ||
      config.new_chain_count > instar::chain_read::kMaxLayers) {
    return Fail(RebaseError::kBadConfig);
  }
  uint64_t budget = layer_count == 0 ? 0 : kLayerRoom / layer_count;
  if (budget > instar::chain_read::kDefaultLayerBudget) budget = instar::chain_read::kDefaultLayerBudget;
  if (budget < kMinLayerBudget) budget = kMinLayerBudget;
  instar::chain_read::Layer* old_layers[instar::chain_read::kMaxLayers] = {};
  instar::chain_read::Layer* new_layers[instar::chain_read::kMaxLayers] = {};
  instar::chain_read::Chain old_chain;
  instar::chain_read::Chain new_chain;
  if (config.old_chain_count != 0) {
    TRY(old_chain, OpenChain(table, arena, config.old_chain_first, config.old_chain_count,
                             budget, old_layers));
  }
  if (new_is_suffix) {
    auto sub = instar::chain_read::Chain::Of(old_layers + (config.new_chain_first -
                                                           config.old_chain_first),
                                             config.new_chain_count);
    if (!sub.ok()) return Fail(RebaseError::kBadConfig);
    new_chain = sub.value();
  } else if (has_new) {
    TRY(new_chain, OpenChain(table, arena, config.new_chain_first, config.new_chain_count,
                             budget, new_layers));
  }

  const instar::base::ImageReader reader{&overlay, ReadDevice, overlay.size()};
  instar::rebase::OverlayTarget target;
  if (format == ImageFormat::kQcow2) {
    auto writer = instar::image_write::Qcow2Writer::Open(reader, executor.sink(), arena);
    if (!writer.ok()) return Fail(FromWrite(writer.error().code), writer.error().detail);
    target = instar::rebase::OverlayTarget::Qcow2(writer.value());
  } else {
    auto writer = instar::image_write::VmdkWriter::Open(reader, executor.sink(), arena);
    if (!writer.ok()) return Fail(FromWrite(writer.error().code), writer.error().detail);
    target = instar::rebase::OverlayTarget::Vmdk(writer.value());
  }
  instar::rebase::CopyProgress progress;
  if ((config.flags & instar::abi::kRebaseProgress) != 0) {
    progress.context = const_cast<instar::abi::CallTable*>(table);
    progress.report = ReportProgress;
  }
  auto copied = instar::rebase::CopyDifferences(
      target, config.old_chain_count != 0 ? &old_chain : nullptr,
      has_new ? &new_chain : nullptr, buffers, progress);
  g_result.writes += executor.steps_applied();
  if (!copied.ok()) {
    const auto failure = copied.error();
    using Side = instar::rebase::CopyFailure::Side;
    switch (failure.code.side) {
      case Side::kOldChain: return Fail(RebaseError::kChainUnreadable, config.old_chain_first);
      case Side::kNewChain: return Fail(RebaseError::kChainUnreadable, config.new_chain_first);
      case Side::kOverlay:
        // A refused write while copying: detail 1 tells the host it was not the header.
        if (failure.code.write == instar::image_write::WriteError::kIoError) {
          return Fail(RebaseError::kWriteFailed, 1);
        }
        return Fail(FromWrite(failure.code.write), failure.detail);
    }
  }
  const auto& stats = copied.value();
  g_result.clusters_compared = stats.units_compared;
  g_result.clusters_copied = stats.units_copied;
  g_result.bytes_copied = stats.bytes_copied;
  return {};
}

// The CID of a VMDK new backing file: its descriptor's CID line, read as qemu reads it.
instar::base::Result<uint32_t, RebaseError> ParentCid(const instar::abi::CallTable* table,
                                                      Arena& arena, const RebaseConfig& config) {
  if ((config.flags & instar::abi::kRebaseNewChainAttached) == 0 ||
      config.new_format != static_cast<uint32_t>(ImageFormat::kVmdk)) {
    return instar::rebase::kNoParentCid;
  }
  DeviceIo parent(table, config.new_chain_first);
  ByteView head;
  TRY(head, ReadZeroFilled(parent, arena, 0, kSector));
  ByteView text;
  if (instar::vmdk::LooksLikeDescriptor(head)) {
    const uint64_t size = parent.size() < instar::vmdk::kMaxDescriptorBytes
                              ? parent.size() : instar::vmdk::kMaxDescriptorBytes;
    TRY(text, ReadZeroFilled(parent, arena, 0, size));
  } else {
    auto sparse = instar::vmdk::ParseSparseHeader(head, parent.size());
    if (!sparse.ok()) return Fail(RebaseError::kChainUnreadable, config.new_chain_first);
    const auto& h = sparse.value();
    if (h.descriptor_size_sectors > instar::vmdk::kMaxDescriptorBytes / kSector ||
        h.descriptor_offset_sectors > UINT64_MAX / kSector) {
      return Fail(RebaseError::kChainUnreadable, config.new_chain_first);
    }
    TRY(text, ReadZeroFilled(parent, arena, h.descriptor_offset_sectors * kSector,
                             h.descriptor_size_sectors * kSector));
  }
  const instar::vmdk::DescriptorKeys keys = instar::vmdk::ReadDescriptorKeys(text);
  if (!keys.cids_readable) return Fail(RebaseError::kChainUnreadable, config.new_chain_first);
  return keys.cid;
}

// monolithicSparse only: its descriptor is embedded in the extent, in a fixed room.
RebaseStatus RebaseVmdk(const instar::abi::CallTable* table, DeviceIo& overlay, Arena& arena,
                        ByteView head, const RebaseConfig& config, bool write) {
  if (instar::vmdk::LooksLikeDescriptor(head)) return Fail(RebaseError::kVmdkUnsupported);
  auto sparse = instar::vmdk::ParseSparseHeader(head, overlay.size());
  if (!sparse.ok()) {
    return Fail(RebaseError::kVmdkBadHeader, static_cast<uint64_t>(sparse.error().code));
  }
  const instar::vmdk::SparseHeader& h = sparse.value();
  if (h.descriptor_offset_sectors == 0 || h.descriptor_size_sectors == 0) {
    return Fail(RebaseError::kVmdkUnsupported);
  }
  if (h.descriptor_size_sectors > instar::vmdk::kMaxDescriptorBytes / kSector ||
      h.descriptor_offset_sectors > UINT64_MAX / kSector ||
      h.descriptor_offset_sectors * kSector > overlay.size()) {
    return Fail(RebaseError::kVmdkBadDescriptor, 0);
  }
  const uint64_t offset = h.descriptor_offset_sectors * kSector;
  const uint64_t room = h.descriptor_size_sectors * kSector;
  ByteView text;
  TRY(text, ReadZeroFilled(overlay, arena, offset, room));
  auto* descriptor = arena.New<instar::vmdk::Descriptor>();
  if (descriptor == nullptr) return Fail(RebaseError::kScratchTooSmall);
  auto parsed = instar::vmdk::ParseDescriptor(text, descriptor);
  if (!parsed.ok()) return Fail(RebaseError::kVmdkBadDescriptor, parsed.error().detail);
  uint32_t parent_cid = 0;
  TRY(parent_cid, ParentCid(table, arena, config));
  uint8_t* rewritten = arena.Allocate(room, kSector);
  if (rewritten == nullptr) return Fail(RebaseError::kScratchTooSmall);
  if (!instar::rebase::RewriteVmdkParent(text, NewBackingOf(config), parent_cid, rewritten,
                                         room)) {
    return Fail(RebaseError::kDescriptorTooLarge);
  }
  if (!write) return {};
  return WriteHeader(overlay, offset, ByteView(rewritten, room));
}

bool ConfigValid(const instar::abi::CallTable* table, const RebaseConfig& config) {
  const uint32_t inputs = table->get_input_device_count();
  auto range_ok = [inputs](uint32_t first, uint32_t count) {
    return count == 0 || (first < inputs && count <= inputs - first);
  };
  return config.requested_format <= static_cast<uint32_t>(ImageFormat::kVmdk) &&
         config.new_format <= static_cast<uint32_t>(ImageFormat::kVmdk) &&
         config.new_backing_name_length < instar::abi::kRebaseNameBytes &&
         config.new_format_name_length < instar::abi::kRebaseFormatNameBytes &&
         range_ok(config.old_chain_first, config.old_chain_count) &&
         range_ok(config.new_chain_first, config.new_chain_count);
}

RebaseStatus Rebase(const instar::abi::CallTable* table, Arena& arena, const RebaseConfig& config) {
  if (!ConfigValid(table, config)) return Fail(RebaseError::kBadConfig);
  DeviceIo overlay(table, instar::abi::kOutputDevice);
  ByteView probe_head;
  TRY(probe_head, ReadZeroFilled(overlay, arena, 0, instar::probe::kProbeBytes));
  ImageFormat format = static_cast<ImageFormat>(config.requested_format);
  if (format == ImageFormat::kAuto) {
    const instar::probe::Format probed = instar::probe::ProbeFormat(
        probe_head.Sub(0, overlay.size() < probe_head.size() ? overlay.size() : probe_head.size()));
    switch (probed) {
      case instar::probe::Format::kRaw: format = ImageFormat::kRaw; break;
      case instar::probe::Format::kQcow2: format = ImageFormat::kQcow2; break;
      case instar::probe::Format::kVmdk: format = ImageFormat::kVmdk; break;
      default: return Fail(RebaseError::kUnsupportedFormat, static_cast<uint64_t>(probed));
    }
  }
  g_result.format = static_cast<uint32_t>(format);
  // A raw image stores no backing file (qemu: ENOTSUP), and owns every byte: nothing to copy.
  if (format == ImageFormat::kRaw) return Fail(RebaseError::kChangeNotSupported);
  const uint64_t mark = arena.used();
  // The header is checked before any data moves (qemu opens the image first).
  if (format == ImageFormat::kQcow2) {
    TRY_STATUS(RebaseQcow2(overlay, arena, config, /*write=*/false));
  } else {
    TRY_STATUS(RebaseVmdk(table, overlay, arena, probe_head, config, /*write=*/false));
  }
  if ((config.flags & instar::abi::kRebaseUnsafe) == 0) {
    arena.Rewind(mark);
    TRY_STATUS(CopyDifferences(table, overlay, arena, format, config));
  }
  arena.Rewind(mark);
  switch (format) {
    case ImageFormat::kQcow2: return RebaseQcow2(overlay, arena, config, /*write=*/true);
    case ImageFormat::kVmdk:
      return RebaseVmdk(table, overlay, arena, probe_head, config, /*write=*/true);
    case ImageFormat::kRaw:
    case ImageFormat::kAuto: break;
  }
  return Fail(RebaseError::kBadConfig);
}

}  // namespace

int instar::ops::RunRebase(const instar::abi::CallTable* table, Arena& scratch) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  const auto* config = static_cast<const RebaseConfig*>(table->get_operation_config(nullptr));
  g_result = {};
  g_result.magic = instar::abi::kRebaseResultMagic;
  const RebaseStatus status = config->magic == instar::abi::kRebaseConfigMagic
                                  ? Rebase(table, scratch, *config)
                                  : RebaseStatus(Fail(RebaseError::kBadConfig));
  return FinishOperation(table, table->send_rebase_result, &g_result, status);
}
