// RunInfo: the host side of the info operation. Opens the image (host-only), runs the info
// guest in a fresh VM, re-validates the InfoResult and records it sends (the guest is
// hostile), and maps every InfoError to qemu-img's message. A vmdk descriptor's extent files
// are opened here, after the guest named them: each must resolve into an allowed directory,
// and sparse ones are attached to a second run that reads their headers. Host-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "abi/image_format.h"
#include "abi/info.h"
#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/operations/info_records.h"

namespace instar::vmm {

struct InfoRequest {
  std::string path;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  bool force_share = false;  // -U: take no QEMU image locks (and ignore theirs)
  VmLimits limits;
  ServerHooks hooks;
  // Where extent files may live; empty means the image's own directory.
  std::vector<std::string> allowed_dirs;
  // Open a qcow2 header as qemu's check does (for check's open errors).
  bool open_as_check = false;
};

struct ImageInfo {
  abi::InfoResult result{};
  InfoRecords records;
  uint64_t actual_size = 0;  // bytes allocated on the host file system (st_blocks), extents too
  std::vector<std::string> extent_paths;  // per extent: the file qemu would name
  LaunchTimings timings;
  std::string debug_text;
};

// Errors carry the text after "Could not open 'PATH': ".
StatusOr<ImageInfo> RunInfo(const Sandbox& sandbox, const InfoRequest& request);

// The message for an error the guest reported; exhaustive over abi::InfoError. Some messages
// quote what the guest sent with the error (feature names, the vmdk create type) or the
// image's name as qemu names it.
std::string DescribeInfoError(abi::InfoError error, uint64_t detail, const InfoRecords& records,
                              const std::string& image_name);

// Checks an InfoResult that arrived from the guest: every enum in range, strings terminated
// inside their fields with the stated length, sizes plausible.
Status ValidateInfoResult(const abi::InfoResult& result);

}  // namespace instar::vmm
