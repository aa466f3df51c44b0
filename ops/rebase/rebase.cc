// The rebase operation: the overlay is the output device (read/write); the old and new backing
// chains are read-only inputs (RebaseConfig names their slots, top first). It probes or checks
// the overlay's format, refuses what qemu-img would refuse before it writes anything, and
// rewrites the backing file reference: the qcow2 header cluster as qemu rewrites it, or the
// VMDK descriptor's parent lines. The RebaseResult is sent even on failure.
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/image_format.h"
#include "abi/memory_map.h"
#include "abi/rebase.h"
#include "abi/transport.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/result.h"
#include "crates/freestanding/guest_image.h"
#include "crates/probe/probe.h"
#include "crates/qcow2/header.h"
#include "crates/rebase/new_backing.h"
#include "crates/rebase/plan_error.h"
#include "crates/rebase/qcow2_header_update.h"
#include "crates/rebase/vmdk_parent_update.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"
#include "ops/common/device_io.h"

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

RebaseStatus RebaseQcow2(DeviceIo& overlay, Arena& arena, const RebaseConfig& config) {
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
  return WriteHeader(overlay, 0, ByteView(cluster, header.cluster_size));
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
                        ByteView head, const RebaseConfig& config) {
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

RebaseStatus Rebase(const instar::abi::CallTable* table, const RebaseConfig& config) {
  if (!ConfigValid(table, config)) return Fail(RebaseError::kBadConfig);
  DeviceIo overlay(table, instar::abi::kOutputDevice);
  Arena arena(reinterpret_cast<uint8_t*>(instar::abi::kScratchMemBase),
              instar::abi::kScratchMemSize);
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
  if ((config.flags & instar::abi::kRebaseUnsafe) == 0) {
    return Fail(RebaseError::kUnsupportedFormat, 0);
  }
  switch (format) {
    // A raw image stores no backing file: qemu's ENOTSUP.
    case ImageFormat::kRaw: return Fail(RebaseError::kChangeNotSupported);
    case ImageFormat::kQcow2: return RebaseQcow2(overlay, arena, config);
    case ImageFormat::kVmdk: return RebaseVmdk(table, overlay, arena, probe_head, config);
    case ImageFormat::kAuto: break;
  }
  return Fail(RebaseError::kBadConfig);
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* table) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  const auto* config = static_cast<const RebaseConfig*>(table->get_operation_config(nullptr));
  g_result.magic = instar::abi::kRebaseResultMagic;
  RebaseStatus status = config->magic == instar::abi::kRebaseConfigMagic
                            ? Rebase(table, *config)
                            : RebaseStatus(Fail(RebaseError::kBadConfig));
  table->send_rebase_result(&g_result);
  if (!status.ok()) {
    table->send_error(static_cast<uint32_t>(status.error().code), status.error().detail);
    table->send_complete(1);
    return 1;
  }
  table->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
