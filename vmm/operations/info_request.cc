#include "vmm/operations/info_request.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "crates/probe/probe.h"
#include "ops/info/info_image.h"
#include "vmm/base/text_format.h"
#include "vmm/chain/path_policy.h"
#include "vmm/operations/vmdk_extent_files.h"
#include "vmm/safety/qemu_image_lock.h"
#include "vmm/transport/device.h"

namespace instar::vmm {
namespace {

bool TerminatedAt(const char* field, size_t capacity, uint32_t length) {
  return length < capacity && field[length] == '\0' && std::strlen(field) == length;
}

uint64_t AllocatedBytes(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

std::string UnsupportedFeatures(uint64_t unknown, const std::vector<FeatureNameInfo>& names) {
  std::string text = "Unsupported qcow2 feature(s): ";
  bool first = true;
  for (const FeatureNameInfo& f : names) {
    const uint64_t bit = uint64_t{1} << f.bit;
    if (f.type != abi::kFeatureIncompatible || (unknown & bit) == 0) continue;
    text += (first ? "" : ", ") + f.name;
    first = false;
    unknown &= ~bit;
  }
  if (unknown != 0) {
    text += (first ? "" : ", ") + Format("Unknown incompatible feature: %llx",
                                         static_cast<unsigned long long>(unknown));
  }
  return text;
}

// What error messages quote from the records sent with the error; a guest that did not send
// them gets "?" (its fault, and it cannot make the host misbehave).
std::string Value(const InfoRecords& records) {
  return records.error_value ? std::to_string(*records.error_value) : "?";
}

const LuksInfo& Luks(const InfoRecords& records) {
  static const LuksInfo kNone{"?", "?", "?", "?"};
  return records.luks ? *records.luks : kNone;
}

std::string SlotStripes(const InfoRecords& records, uint64_t slot) {
  const LuksInfo& l = Luks(records);
  return slot < l.slots.size() ? std::to_string(l.slots[slot].stripes) : "?";
}

struct GuestRun {
  abi::InfoResult result{};
  InfoRecords records;
  LaunchTimings timings;
  std::string debug_text;
};

// One VM: the info guest over `devices`.
StatusOr<GuestRun> RunGuest(const Sandbox& sandbox, const InfoRequest& request, DeviceSet& devices,
                            uint32_t flags) {
  abi::InfoConfig config{};
  config.magic = abi::kInfoConfigMagic;
  config.requested_format = static_cast<uint32_t>(request.format);
  config.flags = flags | (request.open_as_check ? abi::kInfoConfigOpenAsCheck : 0);
  OperationLaunch launch;
  launch.operation = &images::info;
  launch.SetConfig(config);
  launch.expected_result = {abi::kInfoResultMagic, sizeof(abi::InfoResult)};
  launch.limits = request.limits;
  launch.hooks = request.hooks;

  INSTAR_ASSIGN_OR_RETURN(OperationOutcome outcome, RunOperation(sandbox, devices, launch));
  GuestRun run;
  run.timings = outcome.timings;
  run.debug_text = std::move(outcome.report.debug_text);
  INSTAR_ASSIGN_OR_RETURN(run.records, ParseInfoRecords(outcome.report.record_buffer));
  if (outcome.report.result.empty()) {
    const auto [code, detail] = *outcome.report.error;
    if (code >= abi::kInfoErrorCount || code == 0) {
      return GuestFailed("info guest reported unknown error code " + std::to_string(code));
    }
    const auto error = static_cast<abi::InfoError>(code);
    // qemu fails some descriptors with a bare errno, which it words like an open failure.
    if (error == abi::InfoError::kVmdkInvalidArgument) return IoError("Invalid argument");
    return Status(StatusCode::kImageRejected,
                  DescribeInfoError(error, detail, run.records, request.path));
  }
  std::memcpy(&run.result, outcome.report.result.data(), sizeof run.result);
  INSTAR_RETURN_IF_ERROR(ValidateInfoResult(run.result));
  INSTAR_RETURN_IF_ERROR(CheckRecordCounts(run.records, run.result));
  return run;
}

// Opens the extents a descriptor named, in order, as qemu names them.
Status OpenExtents(const InfoRequest& request, const InfoRecords& records, DeviceSet& devices,
                   ImageInfo& info) {
  std::vector<std::string> dirs = request.allowed_dirs;
  if (dirs.empty()) dirs.push_back(DirectoryOf(request.path));
  const Allowlist allowlist(dirs);
  for (const VmdkExtentInfo& e : records.extents) {
    std::string path;
    StatusOr<Device> device =
        OpenVmdkExtent(allowlist, request.path, e.filename, /*writable=*/false, &path);
    if (!device.ok()) return device.status();
    info.actual_size += AllocatedBytes(device->fd.get());
    info.extent_paths.push_back(path);
    devices.inputs.push_back(std::move(*device));
  }
  return Status::Ok();
}

}  // namespace

std::string DescribeInfoError(abi::InfoError error, uint64_t detail, const InfoRecords& records,
                              const std::string& image_name) {
  using abi::InfoError;
  const std::string d = std::to_string(detail);
  switch (error) {
    case InfoError::kOk: return "no error";
    case InfoError::kIoError: return "Could not read image: Input/output error";
    case InfoError::kNotQcow2: return "Image is not in qcow2 format";
    case InfoError::kUnsupportedQcow2Version: return "Unsupported qcow2 version " + d;
    case InfoError::kTruncatedHeader: return "qcow2 header too short";
    case InfoError::kInvalidClusterSize: return "Unsupported cluster size: 2^" + d;
    case InfoError::kUnsupportedFeatures:
      return UnsupportedFeatures(detail, records.feature_names);
    case InfoError::kHeaderTooShort: return "qcow2 header too short";
    case InfoError::kHeaderTooLong: return "qcow2 header exceeds cluster size";
    case InfoError::kRefcountOrderTooLarge:
      return "Reference count entry width too large; may not exceed 64 bits";
    case InfoError::kBadEncryptionMethod:  // qemu prints the field as a signed int
      return "Unsupported encryption method " +
             std::to_string(static_cast<int32_t>(static_cast<uint32_t>(detail)));
    case InfoError::kBackingFileTooLong: return "Backing file name too long";
    case InfoError::kBadHeaderExtension: return "Header extension too large";
    case InfoError::kNotVmdk: return "invalid VMDK image descriptor";
    case InfoError::kVmdkUnsupportedVersion: return "Unsupported VMDK version " + d;
    case InfoError::kVmdkBadGrainSize: return "Invalid granularity, image may be corrupt";
    case InfoError::kVmdkBadGrainTableSize: return "L2 table size too big";
    case InfoError::kVmdkBadL1EntrySize: return "L1 entry size is invalid";
    case InfoError::kVmdkL1TooBig: return "L1 size too big";
    case InfoError::kVmdkFileTruncated:
      return "File truncated, expecting at least " +
             std::to_string(static_cast<int64_t>(detail)) + " bytes";
    case InfoError::kVmdkL1Unreadable:
      return "Could not read l1 table from extent '" + image_name + "': Input/output error";
    case InfoError::kVmdkL1BackupUnreadable:
      return "Could not read l1 backup table from extent '" + image_name +
             "': Input/output error";
    case InfoError::kVmdkUnsupportedCreateType:
      return "Unsupported image type '" + records.vmdk_create_type.value_or("") + "'";
    case InfoError::kVmdkInvalidArgument: return "Invalid argument";
    case InfoError::kCryptoExtensionSize:
      return "CRYPTO header extension size " + d + ", but expected size 16";
    case InfoError::kCryptoHeaderUnaligned:
      return "Encryption header offset '" + d + "' is not a multiple of cluster size '" +
             Value(records) + "'";
    case InfoError::kCryptoOutsideExtension:
      return "Request for data outside of extension header";
    case InfoError::kLuksNotLuks: return "Volume is not in LUKS format";
    case InfoError::kLuksVersion: return "LUKS version " + d + " is not supported";
    case InfoError::kLuksPayloadOverlapsHeader:
      return "LUKS payload is overlapping with the header";
    case InfoError::kLuksSlotState:
      return "Keyslot " + d + " state (active/disable) is corrupted";
    case InfoError::kLuksSlotStripes:
      return "Keyslot " + d + " is corrupted (stripes " + SlotStripes(records, detail) +
             " != 4000)";
    case InfoError::kLuksSlotOverlapsHeader:
      return "Keyslot " + d + " is overlapping with the LUKS header";
    case InfoError::kLuksSlotsOverlap:
      return "Keyslots " + d + " and " + Value(records) + " are overlapping in the header";
    case InfoError::kLuksModeFormat:
      return "Unexpected cipher mode string format '" + Luks(records).cipher_mode + "'";
    case InfoError::kLuksMode:
      return "Cipher mode '" + SplitLuksMode(Luks(records)).mode + "' not supported";
    case InfoError::kLuksIvgen:
      return "IV generator '" + SplitLuksMode(Luks(records)).ivgen + "' not supported";
    case InfoError::kLuksIvgenHash:
      return "Hash algorithm '" + SplitLuksMode(Luks(records)).ivgen_hash + "' not supported";
    case InfoError::kLuksCipher:
      return "Algorithm '" + Luks(records).cipher_name + "' with key size " +
             std::to_string(LuksCipherKeyBytes(Luks(records))) + " bytes not supported";
    case InfoError::kLuksHash:
      return "Hash algorithm '" + Luks(records).hash_spec + "' not supported";
    case InfoError::kBitmapExtensionReserved: return "bitmaps_ext: Reserved field is not zero";
    case InfoError::kBitmapExtensionEmpty: return "found bitmaps extension with zero bitmaps";
    case InfoError::kBitmapExtensionTooMany:
      return "bitmaps_ext: Image has " + d +
             " bitmaps, exceeding the QEMU supported maximum of 65535";
    case InfoError::kBitmapDirectoryTooLarge:
      return "bitmaps_ext: bitmap directory size (" + d +
             ") exceeds the maximum supported size (67107840)";
    case InfoError::kBitmapDirectoryOffset: return "bitmaps_ext: invalid bitmap directory offset";
    case InfoError::kBitmapsMissing: return "Less bitmaps found than specified in header extension";
    case InfoError::kCryptoHeaderUnreadable:
      return "Could not read encryption header: Input/output error";
    case InfoError::kBitmapDirectoryUnreadable:
      return "Failed to read bitmap directory: Input/output error";
    case InfoError::kBitmapsExtra: return "More bitmaps found than specified in header extension";
    case InfoError::kBitmapConstraints:
      return "Bitmap '" + (records.bitmaps.empty() ? std::string() : records.bitmaps.back().name) +
             "' doesn't satisfy the constraints";
    case InfoError::kVmdkDescriptorTooLarge: return "VMDK descriptor too large (" + d + " bytes)";
    case InfoError::kVmdkFileTooSmall: return "File is too small, not a valid image";
    case InfoError::kCryptoExtensionUnexpected:
      return "CRYPTO header extension only expected with LUKS encryption method";
    case InfoError::kVmdkFooterUnreadable: return "Failed to read footer: Input/output error";
    case InfoError::kVmdkInvalidFooter: return "Invalid footer";
    case InfoError::kVmdkBadDescriptor:
      return "Invalid extent line: " + records.error_text.value_or("");
    case InfoError::kUnsupportedFormat: {
      const auto format = static_cast<probe::Format>(detail);
      const char* name = detail < probe::kFormatCount ? probe::FormatName(format) : "unknown";
      return std::string("Image format '") + name + "' is not supported by instar";
    }
    case InfoError::kBadConfig: return "the info operation did not understand its request";
    case InfoError::kInvalidBackingFileOffset: return "Invalid backing file offset";
    case InfoError::kL1TableTooLarge: return "Active L1 table too large";
    case InfoError::kImageTooBig: return "Image is too big";
    case InfoError::kL1TableTooSmall: return "L1 table is too small";
    case InfoError::kL1TableOffsetInvalid: return "Active L1 table offset invalid";
    case InfoError::kL1TableUnreadable: return "Could not read L1 table: Input/output error";
    case InfoError::kRefcountTableTooLarge: return "Reference count table too large";
    case InfoError::kNoRefcountTable: return "Image does not contain a reference count table";
    case InfoError::kRefcountTableOffsetInvalid: return "Reference count table offset invalid";
    case InfoError::kSnapshotTableTooLarge: return "Snapshot table too large";
    case InfoError::kSnapshotTableOffsetInvalid: return "Snapshot table offset invalid";
    case InfoError::kSnapshotExtraTooLarge:
      return "Too much extra metadata in snapshot table entry " + d +
             "\nYou can force-remove this extra metadata with qemu-img check -r all";
    case InfoError::kBitmapExtensionLength: return "bitmaps_ext: Invalid extension length";
    case InfoError::kBitmapDirectoryBroken: return "Broken bitmap directory";
    case InfoError::kCryptoHeaderMissing:
      return "Image uses LUKS encryption but has no encryption header extension";
    case InfoError::kCompressionTypeInvalid: return "qcow2: unknown compression type: " + d;
    case InfoError::kCompressionBitMissing:
      return "qcow2: Compression type incompatible feature bit must be set";
    case InfoError::kCompressionBitSet:
      return "qcow2: Compression type incompatible feature bit must not be set";
    case InfoError::kImageTooLarge: return "Could not refresh total sector count: File too large";
    case InfoError::kVmdkExtentHeaderInvalid: return "Image not in VMDK format";
    case InfoError::kRecordsTooLarge: return "Image metadata too large for instar to report";
    case InfoError::kBackingFormatTooLong:
      return "ERROR: ext_backing_format: len=" + d + " too large (>=16)";
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
  // qcow2 clusters are powers of two; vmdk grains are any whole number of sectors.
  const bool power_of_two = (r.cluster_size & (r.cluster_size - 1)) == 0;
  if (format == abi::ImageFormat::kQcow2 ? !power_of_two : r.cluster_size % 512 != 0) {
    return GuestFailed("info result has an impossible cluster size");
  }
  if (format == abi::ImageFormat::kQcow2) {
    if (r.format_version < 2 || r.format_version > 3 || r.refcount_bits == 0 ||
        r.refcount_bits > 64 || (r.refcount_bits & (r.refcount_bits - 1)) != 0 ||
        r.compression_type > 1 || r.encryption_method > 2) {
      return GuestFailed("info result has qcow2 fields out of range");
    }
  }
  if (r.snapshot_count > abi::kMaxInfoSnapshots || r.bitmap_count > abi::kMaxInfoBitmaps ||
      r.extent_count > abi::kMaxInfoExtents || r.feature_name_count > abi::kMaxInfoFeatureNames) {
    return GuestFailed("info result has a list count out of range");
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
  ImageInfo info;
  info.actual_size = AllocatedBytes(image.fd.get());
  devices.inputs.push_back(std::move(image));

  INSTAR_ASSIGN_OR_RETURN(GuestRun run, RunGuest(sandbox, request, devices, 0));
  const bool descriptor_file = run.result.format == static_cast<uint32_t>(abi::ImageFormat::kVmdk) &&
                               (run.result.flags & abi::kInfoVmdkDescriptorFile) != 0;
  if (descriptor_file) INSTAR_RETURN_IF_ERROR(OpenExtents(request, run.records, devices, info));
  // qemu reads the CIDs and the parent hint after opening the extents, and fails with a bare
  // EINVAL when it cannot.
  if (run.result.flags & abi::kInfoVmdkUnreadableKeys) return IoError("Invalid argument");
  bool any_sparse = false;
  for (const VmdkExtentInfo& e : run.records.extents) {
    any_sparse |= e.type == "SPARSE" || e.type == "VMFSSPARSE";
  }
  if (descriptor_file && any_sparse) {
    // The extents' own headers are image bytes too: a second guest reads them.
    INSTAR_ASSIGN_OR_RETURN(GuestRun second,
                            RunGuest(sandbox, request, devices, abi::kInfoConfigExtentsAttached));
    if (second.records.extents.size() != run.records.extents.size()) {
      return GuestFailed("info guest changed its extent list between runs");
    }
    second.timings.total_us += run.timings.total_us;
    second.timings.exits += run.timings.exits;
    run = std::move(second);
  }
  info.result = run.result;
  info.records = std::move(run.records);
  info.timings = run.timings;
  info.debug_text = std::move(run.debug_text);
  return info;
}

}  // namespace instar::vmm
