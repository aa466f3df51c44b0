#include "vmm/operations/info_request.h"

#include <sys/stat.h>

#include <cstring>

#include "crates/probe/probe.h"
#include "ops/info/info_image.h"
#include "vmm/safety/qemu_image_lock.h"
#include "vmm/transport/device.h"

namespace instar::vmm {
namespace {

bool TerminatedAt(const char* field, size_t capacity, uint32_t length) {
  return length < capacity && field[length] == '\0' && std::strlen(field) == length;
}

}  // namespace

std::string DescribeInfoError(abi::InfoError error, uint64_t detail) {
  using abi::InfoError;
  const std::string d = std::to_string(detail);
  switch (error) {
    case InfoError::kOk: return "no error";
    case InfoError::kIoError: return "Could not read image: Input/output error";
    case InfoError::kNotQcow2: return "Image is not in qcow2 format";
    case InfoError::kUnsupportedQcow2Version: return "Unsupported qcow2 version " + d;
    case InfoError::kTruncatedHeader: return "qcow2 header too short";
    case InfoError::kInvalidClusterSize: return "Unsupported cluster size: 2^" + d;
    case InfoError::kUnsupportedFeatures: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "Unsupported qcow2 feature(s): Unknown incompatible feature: %llx",
                    static_cast<unsigned long long>(detail));
      return buf;
    }
    case InfoError::kHeaderTooShort: return "qcow2 header too short";
    case InfoError::kHeaderTooLong: return "qcow2 header exceeds cluster size";
    case InfoError::kRefcountOrderTooLarge:
      return "Reference count entry width too large; may not exceed 64 bits";
    case InfoError::kBadEncryptionMethod: return "Unsupported encryption method: " + d;
    case InfoError::kBackingFileTooLong: return "Backing file name too long";
    case InfoError::kBadHeaderExtension: return "Invalid header extension";
    case InfoError::kNotVmdk: return "Invalid VMDK image descriptor";
    case InfoError::kVmdkUnsupportedVersion: return "Unsupported VMDK version " + d;
    case InfoError::kVmdkBadGrainSize: return "Invalid VMDK grain size " + d;
    case InfoError::kVmdkBadGrainTableSize: return "Invalid VMDK grain table size " + d;
    case InfoError::kVmdkDescriptorTooLarge: return "VMDK descriptor too large (" + d + " bytes)";
    case InfoError::kVmdkBadDescriptor:
      return "Invalid VMDK image descriptor (line " + d + ")";
    case InfoError::kUnsupportedFormat: {
      const auto format = static_cast<probe::Format>(detail);
      const char* name = detail < probe::kFormatCount ? probe::FormatName(format) : "unknown";
      return std::string("Image format '") + name + "' is not supported by instar";
    }
    case InfoError::kBadConfig: return "the info operation did not understand its request";
  }
  return "unknown info error " + std::to_string(static_cast<uint32_t>(error)) +
         " from the guest";
}

Status ValidateInfoResult(const abi::InfoResult& r) {
  if (r.magic != abi::kInfoResultMagic) return GuestFailed("info result has a bad magic");
  const auto format = static_cast<abi::ImageFormat>(r.format);
  if (format != abi::ImageFormat::kRaw && format != abi::ImageFormat::kQcow2 &&
      format != abi::ImageFormat::kVmdk) {
    return GuestFailed("info result names no known format");
  }
  if (r.cluster_size != 0 && (r.cluster_size & (r.cluster_size - 1)) != 0) {
    return GuestFailed("info result has a cluster size that is not a power of two");
  }
  if (format == abi::ImageFormat::kQcow2) {
    if (r.format_version < 2 || r.format_version > 3 || r.refcount_bits == 0 ||
        r.refcount_bits > 64 || (r.refcount_bits & (r.refcount_bits - 1)) != 0 ||
        r.compression_type > 1 || r.encryption_method > 2) {
      return GuestFailed("info result has qcow2 fields out of range");
    }
  }
  const bool has_backing = (r.flags & abi::kInfoHasBackingFile) != 0;
  const bool has_format = (r.flags & abi::kInfoHasBackingFormat) != 0;
  if (!TerminatedAt(r.backing_file, sizeof r.backing_file, has_backing ? r.backing_file_len : 0) ||
      !TerminatedAt(r.backing_format, sizeof r.backing_format,
                    has_format ? r.backing_format_len : 0)) {
    return GuestFailed("info result has an unterminated or mis-sized string");
  }
  return Status::Ok();
}

StatusOr<ImageInfo> RunInfo(const Sandbox& sandbox, const InfoRequest& request) {
  DeviceSet devices;
  INSTAR_ASSIGN_OR_RETURN(Device image,
                          OpenDevice(request.path, /*writable=*/false, abi::DeviceRole::kImage));
  if (!request.force_share) {
    INSTAR_RETURN_IF_ERROR(AcquireImageLocks(image.fd.get(), kInfoLocks, request.path));
  }
  struct stat st {};
  ImageInfo info;
  if (::fstat(image.fd.get(), &st) == 0) info.actual_size = static_cast<uint64_t>(st.st_blocks) * 512;
  devices.inputs.push_back(std::move(image));

  abi::InfoConfig config{};
  config.magic = abi::kInfoConfigMagic;
  config.requested_format = static_cast<uint32_t>(request.format);
  OperationLaunch launch;
  launch.operation = &images::info;
  launch.config.resize(sizeof config);
  std::memcpy(launch.config.data(), &config, sizeof config);
  launch.expected_result = {abi::kInfoResultMagic, sizeof(abi::InfoResult)};
  launch.limits = request.limits;
  launch.hooks = request.hooks;

  INSTAR_ASSIGN_OR_RETURN(OperationOutcome outcome, RunOperation(sandbox, devices, launch));
  info.timings = outcome.timings;
  info.debug_text = std::move(outcome.report.debug_text);
  if (outcome.report.result.empty()) {
    const auto [code, detail] = *outcome.report.error;
    if (code >= abi::kInfoErrorCount || code == 0) {
      return GuestFailed("info guest reported unknown error code " + std::to_string(code));
    }
    return Status(StatusCode::kImageRejected,
                  DescribeInfoError(static_cast<abi::InfoError>(code), detail));
  }
  std::memcpy(&info.result, outcome.report.result.data(), sizeof info.result);
  INSTAR_RETURN_IF_ERROR(ValidateInfoResult(info.result));
  return info;
}

}  // namespace instar::vmm
