#include "vmm/operations/check_request.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "ops/check/check_image.h"
#include "vmm/chain/backing_check.h"
#include "vmm/operations/check_messages.h"
#include "vmm/operations/info_request.h"
#include "vmm/safety/libvirt_guard.h"
#include "vmm/safety/qemu_image_lock.h"
#include "vmm/transport/device.h"

namespace instar::vmm {
namespace {

constexpr uint64_t kInt64Max = static_cast<uint64_t>(INT64_MAX);

// The formats the check guest may call checkless: qemu opens them but has no check for them
// (vmdk: none for a repair).
bool FormatHasNoCheck(probe::Format format) {
  switch (format) {
    case probe::Format::kRaw:
    case probe::Format::kVmdk:
    case probe::Format::kQcow1:
    case probe::Format::kVpc:
    case probe::Format::kCloop:
    case probe::Format::kBochs:
      return true;
    case probe::Format::kQcow2:
    case probe::Format::kVdi:
    case probe::Format::kVhdx:
    case probe::Format::kQed:
    case probe::Format::kLuks:
    case probe::Format::kParallels:
      return false;
  }
  return false;
}

}  // namespace

Status CollectCheckFindings(const std::vector<Record>& records, CheckOutcome* out) {
  // The guest sends findings as it makes them; each carries the key of its place in qemu's
  // output, which is not always the order it was made in (see abi::CheckFinding::order).
  std::vector<std::pair<uint64_t, std::string>> lines;
  for (const Record& record : records) {
    if (record.magic == abi::kCheckFindingBatchMagic) {
      abi::CheckFindingBatch batch;
      if (record.bytes.size() != sizeof batch) return GuestFailed("finding batch of wrong size");
      std::memcpy(&batch, record.bytes.data(), sizeof batch);
      if (batch.magic != abi::kCheckFindingBatchMagic || batch.count == 0 ||
          batch.count > abi::kFindingsPerBatch) {
        return GuestFailed("finding batch with a bad header");
      }
      for (uint32_t i = 0; i < batch.count; ++i) {
        INSTAR_RETURN_IF_ERROR(ValidateFinding(batch.findings[i]));
        lines.emplace_back(batch.findings[i].order, DescribeFinding(batch.findings[i]));
      }
    } else if (record.magic == abi::kCheckSnapshotFindingMagic) {
      abi::CheckSnapshotFinding finding;
      if (record.bytes.size() != sizeof finding) return GuestFailed("snapshot finding of wrong size");
      std::memcpy(&finding, record.bytes.data(), sizeof finding);
      INSTAR_RETURN_IF_ERROR(ValidateSnapshotFinding(finding));
      lines.emplace_back(finding.order, DescribeSnapshotFinding(finding));
    } else {
      return GuestFailed("check guest sent an undeclared record");
    }
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, text] : lines) out->messages += text;
  return Status::Ok();
}

Status ValidateCheckResult(const abi::CheckResult& r) {
  if (r.magic != abi::kCheckResultMagic) return GuestFailed("check result has a bad magic");
  const auto format = static_cast<abi::ImageFormat>(r.format);
  if (format != abi::ImageFormat::kQcow2 && format != abi::ImageFormat::kVmdk) {
    return GuestFailed("check result names no checkable format");
  }
  if (r.failure >= abi::kCheckFailureCount) return GuestFailed("check result has an unknown failure");
  if ((r.flags & ~abi::kCheckResultKnownFlags) != 0) return GuestFailed("check result has unknown flags");
  for (uint64_t v : {r.check_errors, r.corruptions, r.leaks, r.corruptions_fixed, r.leaks_fixed,
                     r.image_end_offset, r.total_clusters, r.allocated_clusters,
                     r.fragmented_clusters, r.compressed_clusters}) {
    if (v > kInt64Max) return GuestFailed("check result has a count out of range");
  }
  if (r.fragmented_clusters > r.allocated_clusters || r.compressed_clusters > r.allocated_clusters) {
    return GuestFailed("check result has more fragmented or compressed than allocated clusters");
  }
  return Status::Ok();
}

namespace {

// One run of the check guest. Without `backing_checked`, an image with a backing file ends the
// run early (before any write) with `*needs_backing` set.
StatusOr<CheckOutcome> RunCheckOnce(const Sandbox& sandbox, const CheckRequest& request,
                                    bool backing_checked, bool* needs_backing) {
  const bool repair = request.repair != abi::CheckRepair::kNone;
  DeviceSet devices;
  INSTAR_ASSIGN_OR_RETURN(Device image, OpenDevice(request.path, repair, abi::DeviceRole::kImage));
  // QEMU's image locks as qemu-img check takes them (-U: none); a repair also asks libvirt.
  if (!request.force_share) {
    INSTAR_RETURN_IF_ERROR(
        AcquireImageLocks(image.fd.get(), repair ? kWriteLocks : kCheckLocks, request.path));
  }
  if (repair) {
    INSTAR_RETURN_IF_ERROR(CheckNotInUseByLibvirt({request.path}, LibvirtUriFromEnvironment()));
  }
  if (repair) image.limits.write_limit = image.limits.size + abi::RepairGrowthLimit(image.limits.size);
  devices.inputs.push_back(std::move(image));

  abi::CheckConfig config{};
  config.magic = abi::kCheckConfigMagic;
  config.requested_format = static_cast<uint32_t>(request.format);
  config.repair = static_cast<uint32_t>(request.repair);
  config.max_clusters_per_pass = request.max_clusters_per_pass;
  if (backing_checked) config.flags |= abi::kCheckBackingChecked;
  OperationLaunch launch;
  launch.operation = &images::check;
  launch.SetConfig(config);
  launch.expected_result = {abi::kCheckResultMagic, sizeof(abi::CheckResult),
                            {{abi::kCheckFindingBatchMagic, sizeof(abi::CheckFindingBatch),
                              abi::kMaxFindingBatches},
                             {abi::kCheckSnapshotFindingMagic, sizeof(abi::CheckSnapshotFinding),
                              abi::kMaxSnapshotFindings}}};
  launch.limits = request.limits;
  launch.hooks = request.hooks;

  INSTAR_ASSIGN_OR_RETURN(OperationOutcome outcome, RunOperation(sandbox, devices, launch));
  CheckOutcome out;
  out.timings = outcome.timings;
  out.debug_text = std::move(outcome.report.debug_text);
  INSTAR_RETURN_IF_ERROR(CollectCheckFindings(outcome.report.records, &out));
  if (outcome.report.result.empty()) {
    if (!outcome.report.error) return GuestFailed("check guest sent neither a result nor an error");
    const auto [code, detail] = *outcome.report.error;
    if (code >= abi::kCheckErrorCount || code == 0 || abi::CheckErrorRetired(code)) {
      return GuestFailed("check guest reported unknown error code " + std::to_string(code));
    }
    const auto error = static_cast<abi::CheckError>(code);
    if (error == abi::CheckError::kHasBackingFile && !backing_checked) {
      *needs_backing = true;  // a second request for it is reported as a guest error below
      return out;
    }
    if (error == abi::CheckError::kQcow2HeaderRefused ||
        error == abi::CheckError::kVmdkBadHeader) {
      // qemu's open-time message, from the info operation (which knows them all).
      InfoRequest info;
      info.path = request.path;
      info.format = error == abi::CheckError::kVmdkBadHeader ? abi::ImageFormat::kVmdk
                                                             : abi::ImageFormat::kQcow2;
      info.force_share = true;
      info.open_as_check = true;
      info.limits = request.limits;
      devices = DeviceSet();  // release this run's image (and its locks) first
      auto refused = RunInfo(sandbox, info);
      if (!refused.ok()) return refused.status();
      return GuestFailed("the check guest refused a header the info guest accepts");
    }
    if (error == abi::CheckError::kNotSupportedByFormat) {
      const auto format = static_cast<probe::Format>(detail);
      if (detail >= probe::kFormatCount || !FormatHasNoCheck(format)) {
        return GuestFailed("check guest named a format that has checks as one without");
      }
      out.format_unsupported = true;
      out.unsupported_format = format;
      return out;
    }
    return Status(StatusCode::kImageRejected, DescribeCheckError(error, detail));
  }
  std::memcpy(&out.result, outcome.report.result.data(), sizeof out.result);
  INSTAR_RETURN_IF_ERROR(ValidateCheckResult(out.result));
  out.findings_truncated = (out.result.flags & abi::kCheckResultFindingsTruncated) != 0;
  return out;
}

}  // namespace

StatusOr<CheckOutcome> RunCheck(const Sandbox& sandbox, const CheckRequest& request) {
  bool needs_backing = false;
  INSTAR_ASSIGN_OR_RETURN(CheckOutcome out,
                          RunCheckOnce(sandbox, request, /*backing_checked=*/false, &needs_backing));
  if (!needs_backing) return out;
  // qemu opens the backing chain with the image: a layer that does not open fails the check.
  InfoRequest top;
  top.path = request.path;
  top.format = request.format;
  top.limits = request.limits;
  top.force_share = true;  // the first run has released the image and its locks
  ChainPolicy policy;
  policy.allowed_dirs = request.allowed_dirs;
  INSTAR_ASSIGN_OR_RETURN(BackingChainCheck chain, CheckBackingChain(sandbox, top, policy));
  if (chain.refusal) return Status(StatusCode::kImageRejected, *chain.refusal);
  return RunCheckOnce(sandbox, request, /*backing_checked=*/true, &needs_backing);
}

}  // namespace instar::vmm
