// RunCheck: the host side of the check operation. Opens the image (writable only for a repair,
// with a write limit that lets a refcount rebuild grow the file a bounded amount), runs the
// check guest in a fresh VM, and re-validates the CheckResult and every finding record it
// streams (the guest is hostile) before turning them into qemu-img's stderr lines. Host-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "abi/check.h"
#include "abi/image_format.h"
#include "crates/probe/probe.h"
#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/transport/request_server.h"

namespace instar::vmm {

struct CheckRequest {
  std::string path;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  abi::CheckRepair repair = abi::CheckRepair::kNone;
  uint64_t max_clusters_per_pass = 0;  // 0: the guest decides
  bool force_share = false;  // -U: take no QEMU image locks (and ignore theirs)
  // Where backing files may live (empty: the image's directory).
  std::vector<std::string> allowed_dirs;
  VmLimits limits;
  ServerHooks hooks;
};

struct CheckOutcome {
  // The check did not run because qemu-img would refuse the format ("This image format does
  // not support checks", exit 63).
  bool format_unsupported = false;
  probe::Format unsupported_format = probe::Format::kRaw;  // which one
  abi::CheckResult result{};
  std::string messages;  // the findings, as qemu prints them on stderr, in order
  bool findings_truncated = false;
  LaunchTimings timings;
  std::string debug_text;
};

// Errors carry the text after "Could not open 'PATH': ".
StatusOr<CheckOutcome> RunCheck(const Sandbox& sandbox, const CheckRequest& request);

// Checks a CheckResult that arrived from the guest.
Status ValidateCheckResult(const abi::CheckResult& result);

// Turns the finding records the guest streamed (batches and snapshot findings, in order) into
// qemu's stderr text in out->messages, validating every one.
Status CollectCheckFindings(const std::vector<Record>& records, CheckOutcome* out);

}  // namespace instar::vmm
