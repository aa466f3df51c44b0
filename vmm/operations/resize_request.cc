#include "vmm/operations/resize_request.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "crates/probe/probe.h"
#include "crates/vmdk/extent_name.h"
#include "ops/resize/resize_image.h"
#include "vmm/base/text_format.h"
#include "vmm/chain/backing_check.h"
#include "vmm/chain/path_policy.h"
#include "vmm/operations/check_request.h"
#include "vmm/operations/info_request.h"
#include "vmm/operations/vmdk_extent_files.h"
#include "vmm/safety/libvirt_guard.h"
#include "vmm/safety/qemu_image_lock.h"
#include "vmm/transport/device.h"

namespace instar::vmm {
namespace {

// The largest metadata a qcow2 grow writes past the end of the file: a new L1 table at qemu's
// 32 MiB cap, a new refcount table at its 8 MiB cap, their refcount blocks, and cluster
// alignment, rounded up generously.
constexpr uint64_t kGrowHeadroom = 64ull << 20;

const char* PreallocationName(uint64_t mode) {
  // A guest-sent detail: the enum conversion would keep only its low 32 bits.
  if (mode > UINT32_MAX) return "unknown";
  switch (static_cast<abi::Preallocation>(mode)) {
    case abi::Preallocation::kOff: return "off";
    case abi::Preallocation::kMetadata: return "metadata";
    case abi::Preallocation::kFalloc: return "falloc";
    case abi::Preallocation::kFull: return "full";
  }
  return "unknown";
}

ResizeMessage Line(std::string text, bool while_opening = false) {
  return ResizeMessage{{std::move(text)}, while_opening};
}

}  // namespace

ResizeMessage DescribeResizeError(abi::ResizeError error, uint64_t detail,
                                  abi::ImageFormat format) {
  using abi::ResizeError;
  const std::string d = std::to_string(detail);
  const bool open = true;
  switch (error) {
    case ResizeError::kOk: return Line("no error");
    case ResizeError::kIoError: return Line("Could not resize image: Input/output error");
    case ResizeError::kBadConfig: return Line("the resize operation did not understand its request");
    case ResizeError::kUnsupportedFormat: {
      // qemu-img opens a LUKS image only with its secret (--object, which instar refuses).
      if (detail == static_cast<uint64_t>(probe::Format::kLuks)) {
        return Line("Parameter 'key-secret' is required for cipher", open);
      }
      const char* name = detail < probe::kFormatCount
                             ? probe::FormatName(static_cast<probe::Format>(detail))
                             : "unknown";
      return Line(std::string("Image format '") + name + "' is not supported by instar", open);
    }
    case ResizeError::kSizeNotPositive: return Line("New image size must be positive");
    case ResizeError::kPreallocationNeedsGrowth:
      return Line("Preallocation can only be used for growing images");
    case ResizeError::kShrinkNotAllowed:
      return ResizeMessage{
          {"Use the --shrink option to perform a shrink operation.",
           "warning: Shrinking an image will delete all data beyond the shrunken image's end. "
           "Before performing such an operation, make sure there is no important data there."},
          false};
    case ResizeError::kSizeAboveMaximum:
      return Line("offset(" + d + ") exceeds maximum(9223372035781033984)");
    case ResizeError::kSizeNotSectorMultiple: return Line("The new size must be a multiple of 512");
    case ResizeError::kV2WithSnapshots: return Line("Can't resize a v2 image which has snapshots");
    case ResizeError::kL1TooLarge: return Line("Failed to grow the L1 table: File too large");
    case ResizeError::kImageCorruptFlag:
      return Line("qcow2: Image is corrupt; cannot be opened read/write", open);
    case ResizeError::kFormatCannotResize: return Line("Image format driver does not support resize");
    case ResizeError::kPreallocationUnsupported:
      if (format == abi::ImageFormat::kRaw) {
        return Line(std::string("Unsupported preallocation mode: ") + PreallocationName(detail));
      }
      return Line(std::string("instar does not support preallocation=") +
                  PreallocationName(detail) + " for this format yet");
    case ResizeError::kFileTooLarge: return Line("Could not resize file: File too large");
    case ResizeError::kDirtyImage:
      // Still dirty after the repair RunResize runs first.
      return Line("Could not repair dirty image: Input/output error", open);
    case ResizeError::kExternalDataFile:
      return Line("instar cannot resize a qcow2 image with an external data file (qemu-img "
                  "resizes the data file with it)", open);
    // qemu-img opens an encrypted image only with its secret (--object, which instar refuses).
    case ResizeError::kEncrypted:
      return Line("Parameter 'encrypt.key-secret' is required for cipher", open);
    case ResizeError::kHasBackingFile:
      return Line("the resize guest needs the backing file checked first (host error)");
    case ResizeError::kQcow2HeaderRefused:
      return Line("the resize guest refused the qcow2 header (host error)");
    case ResizeError::kBackingFileLarger:
      return Line("instar cannot yet grow this image over its larger backing file (" + d +
                  " bytes): the old end is not on a cluster boundary, or preallocation was "
                  "asked for");
    case ResizeError::kZeroNotSupported:
      return Line("Failed to zero out new clusters: Operation not supported");
    case ResizeError::kCorruptL1:
      return Line("qcow2 image is corrupt: bad L1 table or entry (offset " + Hex(detail) +
                  "); nothing was changed");
    case ResizeError::kCorruptL2:
      return Line("qcow2 image is corrupt: bad L2 entry (table at " + Hex(detail) +
                  "); nothing was changed");
    case ResizeError::kCorruptRefcountTable:
      return Line("qcow2 image is corrupt: bad refcount table or block (offset " + Hex(detail) +
                  ")", open);
    case ResizeError::kCorruptRefcount:
      return Line("qcow2 image is corrupt: refcount of cluster " + d +
                  " is inconsistent; run 'qemu-img check'");
    case ResizeError::kScratchTooSmall:
      return Line("the image's metadata for this resize does not fit instar's guest memory");
    case ResizeError::kVmdkBadHeader: return Line("Invalid VMDK sparse header (" + d + ")", open);
    case ResizeError::kVmdkBadDescriptor:
      return Line("Invalid VMDK image descriptor (line " + d + ")", open);
    case ResizeError::kVmdkCorrupt:
      return Line("VMDK image is corrupt: grain directory or table outside the file (offset " +
                  Hex(detail) + "); nothing was changed");
    case ResizeError::kNeedsExtents:
      return Line("the resize guest needs the extent files attached first (host error)");
    case ResizeError::kTooManyExtents:
      return Line("instar cannot grow this twoGbMaxExtentSparse image to " + d +
                  " bytes: it would need more than 64 extents");
    case ResizeError::kExtentMismatch:
      return Line("VMDK extent " + std::to_string(detail + 1) +
                  " does not match its line in the descriptor (bad header or another size); "
                  "nothing was changed");
  }
  return Line("unknown resize error " + std::to_string(static_cast<uint32_t>(error)) +
              " from the guest");
}

Status ValidateResizeResult(const abi::ResizeResult& r) {
  if (r.magic != abi::kResizeResultMagic) return GuestFailed("resize result has a bad magic");
  const auto format = static_cast<abi::ImageFormat>(r.format);
  if (format != abi::ImageFormat::kAuto && format != abi::ImageFormat::kRaw &&
      format != abi::ImageFormat::kQcow2 && format != abi::ImageFormat::kVmdk) {
    return GuestFailed("resize result names no known format");
  }
  if (r.flags != 0) return GuestFailed("resize result has unknown flags");
  return Status::Ok();
}

uint64_t ResizeWriteLimit(uint64_t file_size, const ResizeRequest& request) {
  const auto saturating_add = [](uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; };
  uint64_t limit = saturating_add(file_size, kGrowHeadroom);
  uint64_t target = request.size;
  if (request.size_mode == abi::ResizeSizeMode::kGrowBy) {
    // A raw image's virtual size is its length rounded up to a sector.
    target = saturating_add((file_size + 511) / 512 * 512, request.size);
  } else if (request.size_mode == abi::ResizeSizeMode::kShrinkBy) {
    target = 0;
  }
  // Preallocation gives every new guest cluster a host cluster past the end of the file, plus
  // L2 tables and refcount blocks for them (at most 1/64 each, with 512-byte clusters).
  if (request.preallocation != abi::Preallocation::kOff) {
    target = saturating_add(saturating_add(file_size, target),
                            saturating_add(target / 16, kGrowHeadroom));
  }
  return target > limit ? target : limit;
}

abi::ResizeConfig MakeResizeConfig(const ResizeRequest& request,
                                   std::optional<uint64_t> backing_size) {
  abi::ResizeConfig config{};
  config.magic = abi::kResizeConfigMagic;
  config.requested_format = static_cast<uint32_t>(request.format);
  config.flags = request.allow_shrink ? abi::kResizeAllowShrink : 0;
  config.preallocation = static_cast<uint32_t>(request.preallocation);
  config.new_size = request.size;
  config.size_mode = static_cast<uint32_t>(request.size_mode);
  if (backing_size) {
    config.backing_flags = abi::kResizeBackingChecked;
    config.backing_size = *backing_size;
  }
  return config;
}

namespace {

// The extents of a twoGbMaxExtentSparse image being grown, for the second run: the existing
// ones in the descriptor's order, then the new files.
struct SplitExtents {
  std::vector<Device> devices;
  uint32_t new_count = 0;
  uint32_t first_number = 0;
  ExtentNameParts names;
};

// One run of the resize guest; `backing_size` is set when the host has checked the backing
// file, `extents` when they are attached.
StatusOr<ResizeOutcome> RunResizeOnce(const Sandbox& sandbox, const ResizeRequest& request,
                                      std::optional<uint64_t> backing_size,
                                      SplitExtents* extents = nullptr) {
  DeviceSet devices;
  INSTAR_ASSIGN_OR_RETURN(Device image,
                          OpenDevice(request.path, /*writable=*/true, abi::DeviceRole::kImage));
  // Never write under a running VM: QEMU's own image locks, then libvirt's view.
  INSTAR_RETURN_IF_ERROR(AcquireImageLocks(image.fd.get(), kWriteLocks, request.path));
  INSTAR_RETURN_IF_ERROR(CheckNotInUseByLibvirt({request.path}, LibvirtUriFromEnvironment()));
  image.limits.write_limit = ResizeWriteLimit(image.limits.size, request);
  image.format = request.format;
  devices.output = std::move(image);

  abi::ResizeConfig config = MakeResizeConfig(request, backing_size);
  if (extents != nullptr) {
    config.extent_flags = abi::kResizeExtentsAttached;
    config.new_extent_count = extents->new_count;
    config.first_extent_number = extents->first_number;
    std::memcpy(config.extent_stem, extents->names.stem.c_str(), extents->names.stem.size() + 1);
    std::memcpy(config.extent_suffix, extents->names.suffix.c_str(),
                extents->names.suffix.size() + 1);
    devices.inputs = std::move(extents->devices);
  }
  OperationLaunch launch;
  launch.operation = &images::resize;
  launch.SetConfig(config);
  launch.expected_result = {abi::kResizeResultMagic, sizeof(abi::ResizeResult)};
  launch.limits = request.limits;
  launch.hooks = request.hooks;

  INSTAR_ASSIGN_OR_RETURN(OperationOutcome run, RunOperation(sandbox, devices, launch));
  ResizeOutcome outcome;
  outcome.timings = run.timings;
  outcome.debug_text = std::move(run.report.debug_text);
  if (!run.report.result.empty()) {
    abi::ResizeResult result;
    std::memcpy(&result, run.report.result.data(), sizeof result);
    INSTAR_RETURN_IF_ERROR(ValidateResizeResult(result));
    outcome.result = result;
  }
  if (run.report.error) {
    const auto [code, detail] = *run.report.error;
    if (code >= abi::kResizeErrorCount || code == 0 || abi::ResizeErrorRetired(code)) {
      return GuestFailed("resize guest reported unknown error code " + std::to_string(code));
    }
    const auto error = static_cast<abi::ResizeError>(code);
    const auto format = outcome.result ? static_cast<abi::ImageFormat>(outcome.result->format)
                                       : request.format;
    outcome.error = error;
    outcome.error_detail = detail;
    outcome.refusal = DescribeResizeError(error, detail, format);
  } else if (!outcome.result) {
    return GuestFailed("resize guest completed without a result");
  } else if (run.report.completed && *run.report.completed != 0) {
    return GuestFailed("resize guest failed without an error code");
  }
  return outcome;
}

// The backing file's virtual size, learned through the shared chain discovery (architecture
// section 6: the info guest reads each backing name, the host resolves it as qemu does,
// refuses pseudo-paths, anything outside the allowed directories, cycles and deep chains).
// qemu opens the whole chain with the image, so every layer must open. A refusal comes back
// in `refusal`, worded as qemu-img's "Could not open backing file: ...".
StatusOr<uint64_t> CheckBackingFile(const Sandbox& sandbox, const ResizeRequest& request,
                                    std::optional<ResizeMessage>* refusal) {
  InfoRequest top;
  top.path = request.path;
  top.format = request.format;
  top.limits = request.limits;
  top.force_share = true;  // instar's own resize run has just released the image
  ChainPolicy policy;
  policy.allowed_dirs = request.allowed_dirs;
  INSTAR_ASSIGN_OR_RETURN(BackingChainCheck check, CheckBackingChain(sandbox, top, policy));
  if (check.refusal) *refusal = ResizeMessage{{*check.refusal}, true};
  return check.backing_virtual_size;
}

// Grows a twoGbMaxExtentSparse image whose first run asked for `new_count` new extent files:
// finds its extents as info does (the info guest reads the descriptor, the host resolves and
// admits each name), opens them (the last writable, every one locked as qemu locks them),
// creates the new files next to the descriptor and runs the guest again with all of them
// attached. The new files are removed again unless the run succeeds (or changed the
// descriptor).
StatusOr<ResizeOutcome> GrowSplitVmdk(const Sandbox& sandbox, const ResizeRequest& request,
                                      uint64_t new_count) {
  InfoRequest info_request;
  info_request.path = request.path;
  info_request.format = abi::ImageFormat::kVmdk;
  info_request.allowed_dirs = request.allowed_dirs;
  info_request.force_share = true;  // the resize takes the write locks itself
  info_request.limits = request.limits;
  INSTAR_ASSIGN_OR_RETURN(ImageInfo info, RunInfo(sandbox, info_request));
  const std::vector<VmdkExtentInfo>& named = info.records.extents;
  if (named.empty() || named.size() + new_count > abi::kMaxInfoExtents) {
    return GuestFailed("the resize guest asked for an impossible number of extent files");
  }
  SplitExtents extents;
  extents.new_count = static_cast<uint32_t>(new_count);
  extents.first_number = static_cast<uint32_t>(named.size() + 1);
  extents.names = SplitDescriptorName(request.path);
  if (extents.names.stem.size() >= abi::kResizeExtentStemBytes ||
      extents.names.suffix.size() >= abi::kResizeExtentSuffixBytes) {
    return InvalidArgument("the descriptor's file name is too long to name new extents after it");
  }
  std::vector<std::string> dirs = request.allowed_dirs;
  if (dirs.empty()) dirs.push_back(DirectoryOf(request.path));
  const Allowlist allowlist(dirs);
  for (size_t i = 0; i < named.size(); ++i) {
    const bool last = i + 1 == named.size();
    std::string path;
    INSTAR_ASSIGN_OR_RETURN(Device extent,
                            OpenVmdkExtent(allowlist, request.path, named[i].filename, last, &path));
    INSTAR_RETURN_IF_ERROR(AcquireImageLocks(extent.fd.get(), kWriteLocks, path));
    if (last) extent.limits.write_limit = extent.limits.size + kGrowHeadroom;
    extents.devices.push_back(std::move(extent));
  }
  NewExtentFiles created(request.path);
  for (uint32_t i = 0; i < extents.new_count; ++i) {
    char name[abi::kResizeExtentStemBytes + abi::kResizeExtentSuffixBytes + 16];
    const uint64_t length = vmdk::WriteExtentFileName(
        extents.names.stem.c_str(), extents.first_number + i, extents.names.suffix.c_str(),
        reinterpret_cast<uint8_t*>(name), sizeof name);
    INSTAR_ASSIGN_OR_RETURN(Device file, created.Create(std::string(name, length)));
    extents.devices.push_back(std::move(file));
  }
  INSTAR_ASSIGN_OR_RETURN(ResizeOutcome outcome,
                          RunResizeOnce(sandbox, request, std::nullopt, &extents));
  if (outcome.error == abi::ResizeError::kNeedsExtents) {
    return GuestFailed("the resize guest asked for extent files twice");
  }
  if (!outcome.error) created.Keep();
  return outcome;
}

}  // namespace

// qemu's message for a qcow2 header the resize guest refused: the info operation knows every
// open-time check and its exact text.
Status HeaderRefusal(const Sandbox& sandbox, const ResizeRequest& request,
                     abi::ImageFormat format) {
  InfoRequest info;
  info.path = request.path;
  info.format = format;
  info.force_share = true;  // the resize already holds the image's locks
  info.limits = request.limits;
  auto refused = RunInfo(sandbox, info);
  if (!refused.ok()) return refused.status();
  return GuestFailed("the resize guest refused a header the info guest accepts");
}

namespace {

// qemu opens a dirty image (lazy refcounts) read/write only after repairing it as
// `qemu-img check -r all` would, printing the findings on stderr; the check operation does
// the repair. Empty when it worked, else qemu's refusal.
StatusOr<std::optional<ResizeMessage>> RepairDirtyImage(const Sandbox& sandbox,
                                                        const ResizeRequest& request,
                                                        std::string* messages) {
  CheckRequest check;
  check.path = request.path;
  check.format = abi::ImageFormat::kQcow2;
  check.repair = abi::CheckRepair::kAll;
  check.allowed_dirs = request.allowed_dirs;
  check.limits = request.limits;
  INSTAR_ASSIGN_OR_RETURN(CheckOutcome repaired, RunCheck(sandbox, check));
  *messages = std::move(repaired.messages);
  if (repaired.format_unsupported || repaired.result.failure != 0 ||
      repaired.result.check_errors != 0) {
    return std::optional<ResizeMessage>(
        DescribeResizeError(abi::ResizeError::kDirtyImage, 0, abi::ImageFormat::kQcow2));
  }
  return std::optional<ResizeMessage>();
}

// RunResize; `repaired` once the image was repaired (a second dirty report is a refusal).
StatusOr<ResizeOutcome> RunResizeAfterRepair(const Sandbox& sandbox, const ResizeRequest& request,
                                             bool repaired);

}  // namespace

StatusOr<ResizeOutcome> RunResize(const Sandbox& sandbox, const ResizeRequest& request) {
  return RunResizeAfterRepair(sandbox, request, false);
}

namespace {

StatusOr<ResizeOutcome> RunResizeAfterRepair(const Sandbox& sandbox, const ResizeRequest& request,
                                             bool repaired) {
  INSTAR_ASSIGN_OR_RETURN(ResizeOutcome outcome, RunResizeOnce(sandbox, request, std::nullopt));
  if (outcome.error == abi::ResizeError::kDirtyImage && !repaired) {
    std::string messages;
    INSTAR_ASSIGN_OR_RETURN(std::optional<ResizeMessage> refusal,
                            RepairDirtyImage(sandbox, request, &messages));
    if (refusal) {
      outcome.refusal = std::move(refusal);
      outcome.repair_messages = std::move(messages);
      return outcome;
    }
    INSTAR_ASSIGN_OR_RETURN(outcome, RunResizeAfterRepair(sandbox, request, true));
    outcome.repair_messages = messages + outcome.repair_messages;
    return outcome;
  }
  if (outcome.error == abi::ResizeError::kQcow2HeaderRefused) {
    return HeaderRefusal(sandbox, request, abi::ImageFormat::kQcow2);
  }
  if (outcome.error == abi::ResizeError::kVmdkBadHeader) {
    return HeaderRefusal(sandbox, request, abi::ImageFormat::kVmdk);
  }
  if (outcome.error == abi::ResizeError::kNeedsExtents) {
    return GrowSplitVmdk(sandbox, request, outcome.error_detail);
  }
  if (outcome.error != abi::ResizeError::kHasBackingFile) return outcome;
  std::optional<ResizeMessage> refusal;
  INSTAR_ASSIGN_OR_RETURN(uint64_t backing_size, CheckBackingFile(sandbox, request, &refusal));
  if (refusal) {
    outcome.refusal = std::move(refusal);
    return outcome;
  }
  INSTAR_ASSIGN_OR_RETURN(outcome, RunResizeOnce(sandbox, request, backing_size));
  if (outcome.error == abi::ResizeError::kHasBackingFile) {
    return GuestFailed("the resize guest asked for a backing file check twice");
  }
  return outcome;
}

}  // namespace

}  // namespace instar::vmm
