// RunResize: the host side of the resize operation. Opens the image read/write (host-only),
// bounds how far the guest may extend it, runs the resize guest in a fresh VM, re-validates
// the ResizeResult it sends (the guest is hostile) and maps every ResizeError to qemu-img's
// message (or instar's own, where instar refuses what qemu-img would do). Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/image_format.h"
#include "abi/resize.h"
#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/launcher/operation_launcher.h"

namespace instar::vmm {

struct ResizeRequest {
  std::string path;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  abi::ResizeSizeMode size_mode = abi::ResizeSizeMode::kAbsolute;
  uint64_t size = 0;  // absolute, or the delta for kGrowBy / kShrinkBy
  bool allow_shrink = false;
  abi::Preallocation preallocation = abi::Preallocation::kOff;
  // Where backing files may live (empty: the image's directory).
  std::vector<std::string> allowed_dirs;
  VmLimits limits;
  // Tests set hooks.fail_writes_after to interrupt the operation after N writes.
  ServerHooks hooks;
};

// How a refusal reads: the lines qemu-img prints ("warning: ..." lines included, without the
// program name), and whether qemu-img says it while opening the image ("Could not open
// 'FILE': " comes first then).
struct ResizeMessage {
  std::vector<std::string> lines;
  bool while_opening = false;
};

struct ResizeOutcome {
  // Present whenever the guest got far enough to send it (also on refusals): the format it
  // found, the sizes.
  std::optional<abi::ResizeResult> result;
  // Set when the guest refused or failed.
  std::optional<ResizeMessage> refusal;
  std::optional<abi::ResizeError> error;
  uint64_t error_detail = 0;
  // A dirty image was repaired first: the findings, as qemu-img prints them on stderr.
  std::string repair_messages;
  LaunchTimings timings;
  std::string debug_text;
};

// VM and file-open failures are a Status; the guest's refusals are in ResizeOutcome.
StatusOr<ResizeOutcome> RunResize(const Sandbox& sandbox, const ResizeRequest& request);

// The message for an error the guest reported; exhaustive over abi::ResizeError.
ResizeMessage DescribeResizeError(abi::ResizeError error, uint64_t detail,
                                  abi::ImageFormat format);

// Checks a ResizeResult from the guest: magic, a known format, sizes in range.
Status ValidateResizeResult(const abi::ResizeResult& result);

// How far the guest may write or extend the image: its current size plus room for the largest
// metadata a qcow2 grow can need, or the requested size when that is larger.
uint64_t ResizeWriteLimit(uint64_t file_size, const ResizeRequest& request);

// The guest's config for `request`; `backing_size` when the host checked the backing file.
abi::ResizeConfig MakeResizeConfig(const ResizeRequest& request,
                                   std::optional<uint64_t> backing_size);

}  // namespace instar::vmm
