#include "vmm/operations/commit_request.h"

#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ops/commit/commit_image.h"
#include "vmm/base/text_format.h"
#include "vmm/chain/chain_discovery.h"
#include "vmm/chain/path_policy.h"
#include "vmm/operations/info_request.h"
#include "vmm/safety/libvirt_guard.h"
#include "vmm/safety/qemu_image_lock.h"
#include "vmm/transport/device.h"

namespace instar::vmm {
namespace {

// Room for metadata a commit can add to the base beyond L2 tables and refcount blocks for the
// committed data: a grown L1 table at qemu's 32 MiB cap, a new refcount table at its 8 MiB cap,
// their refcount blocks and cluster alignment, rounded up generously.
constexpr uint64_t kMetadataHeadroom = 64ull << 20;
// The largest cluster of any format: a partly owned cluster is committed whole.
constexpr uint64_t kLargestCluster = 2ull << 20;

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

const char* FormatName(uint64_t format) {
  // A guest-sent detail: the enum conversion would keep only its low 32 bits.
  if (format > UINT32_MAX) return "unknown";
  switch (static_cast<abi::ImageFormat>(format)) {
    case abi::ImageFormat::kAuto: return "auto";
    case abi::ImageFormat::kRaw: return "raw";
    case abi::ImageFormat::kQcow2: return "qcow2";
    case abi::ImageFormat::kVmdk: return "vmdk";
  }
  return "unknown";
}

std::string UnsupportedText(uint64_t detail) {
  using abi::CommitUnsupported;
  if (detail > UINT32_MAX) return "unsupported image layout " + std::to_string(detail);
  switch (static_cast<CommitUnsupported>(detail)) {
    case CommitUnsupported::kZstdCompression:
      return "instar does not read zstd-compressed qcow2 images";
    case CommitUnsupported::kExtendedL2:
      return "instar does not write qcow2 images with extended L2 entries";
    case CommitUnsupported::kVmdkMultiFile:
      return "instar commits vmdk images only as single sparse files (monolithicSparse)";
    case CommitUnsupported::kVmdkStreamOptimized:
      return "instar cannot write into a streamOptimized vmdk";
    case CommitUnsupported::kVmdkNotSparse:
      return "instar writes vmdk images only as single sparse files (monolithicSparse)";
    case CommitUnsupported::kGrowUnaligned:
      return "instar cannot yet grow this base over its longer backing file: its size is not "
             "a multiple of its cluster size";
  }
  return "unsupported image layout " + std::to_string(detail);
}

std::string Realpath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

// qemu's bdrv_find_backing_image for a file name: BASE is taken relative to each layer's
// directory in turn and matches the layer's backing file when both canonicalise to the same
// file. Returns the matching layer's index, 0 when none matches.
size_t FindBase(const std::vector<ChainLayer>& chain, const std::string& base) {
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    const std::string candidate = Realpath(CombinePath(chain[i].filename, base));
    if (!candidate.empty() && candidate == chain[i + 1].canonical) return i + 1;
  }
  return 0;
}

CommitOutcome Refused(std::string line) {
  CommitOutcome outcome;
  outcome.refusal.push_back(std::move(line));
  return outcome;
}

// Opens one layer for the run: `open_writable` opens it read/write (qemu opens the top so even
// with -d), `attach_writable` lets the guest write it.
StatusOr<Device> OpenLayer(const ChainLayer& layer, bool open_writable, bool attach_writable,
                           abi::DeviceRole role) {
  INSTAR_ASSIGN_OR_RETURN(Device device, OpenDevice(layer.filename, open_writable, role));
  device.limits.writable = attach_writable;
  device.limits.write_limit = attach_writable ? device.limits.size : 0;
  device.format = static_cast<abi::ImageFormat>(layer.info.result.format);
  device.virtual_size = layer.info.result.virtual_size;
  device.cluster_size = layer.info.result.cluster_size;
  return device;
}

// Formats and layouts the commit guest works on; the line qemu-img would not print otherwise.
std::optional<std::string> Unsupported(const ChainLayer& layer) {
  const abi::InfoResult& r = layer.info.result;
  const auto format = static_cast<abi::ImageFormat>(r.format);
  if (format == abi::ImageFormat::kVmdk && (r.flags & abi::kInfoVmdkDescriptorFile) != 0) {
    return "Could not open '" + layer.filename +
           "': instar commits vmdk images only as single sparse files (monolithicSparse)";
  }
  return std::nullopt;
}

}  // namespace

std::string DescribeCommitError(abi::CommitError error, uint64_t detail, const std::string& layer,
                                bool written) {
  using abi::CommitError;
  const std::string open = "Could not open " + layer + ": ";
  const std::string state = written ? "; the base may hold part of the committed data (each "
                                      "cluster old or new), run the commit again"
                                    : "; nothing was changed";
  switch (error) {
    case CommitError::kOk: return "no error";
    case CommitError::kIoError:
      return "Block job failed: Input/output error (request status " +
             std::to_string(static_cast<int64_t>(detail)) + ")" + (written ? state : "");
    case CommitError::kBadConfig: return "the commit operation did not understand its request";
    case CommitError::kUnsupportedFormat:
      return open + "Image format '" + FormatName(detail) + "' is not supported by instar commit";
    case CommitError::kHeaderRefused:
      return open + "the commit guest refused a header the info guest accepted";
    case CommitError::kImageCorruptFlag:
      return open + "qcow2: Image is corrupt; cannot be opened read/write";
    case CommitError::kDirtyImage:
      return open + "the image is marked dirty (lazy refcounts); instar does not repair "
                    "refcounts: run 'qemu-img check -r all' on it first";
    case CommitError::kExternalDataFile:
      return open + "instar cannot commit images with an external data file";
    case CommitError::kEncrypted: return open + "instar cannot commit encrypted images";
    case CommitError::kCorruptMetadata:
      return "image " + layer + " is corrupt: inconsistent metadata at offset " + Hex(detail) +
             state;
    case CommitError::kScratchTooSmall:
      return "the metadata of " + layer + " for this commit does not fit instar's guest memory" +
             state;
    case CommitError::kBaseCannotGrow: return "Block job failed: Operation not supported";
    case CommitError::kL1TooLarge: return "Block job failed: File too large";
    case CommitError::kUnsupportedLayout:
      return open + UnsupportedText(detail);
    case CommitError::kChainMismatch:
      return layer + " changed while instar was reading the chain; nothing was changed";
  }
  return "unknown commit error " + std::to_string(static_cast<uint32_t>(error)) + " from the guest";
}

Status ValidateCommitResult(const abi::CommitResult& r, uint32_t layer_count) {
  if (r.magic != abi::kCommitResultMagic) return GuestFailed("commit result has a bad magic");
  if ((r.flags & ~(abi::kCommitTopEmptied | abi::kCommitBaseGrown)) != 0) {
    return GuestFailed("commit result has unknown flags");
  }
  if (r.failed_layer >= layer_count && r.failed_layer != abi::kCommitLayerUnknown) {
    return GuestFailed("commit result names no layer");
  }
  if (r.base_new_size < r.base_old_size) return GuestFailed("commit result shrank the base");
  return Status::Ok();
}

uint64_t CommitBaseWriteLimit(uint64_t base_file_size, uint64_t top_virtual_size) {
  const uint64_t data = SaturatingAdd(top_virtual_size, kLargestCluster);
  // L2 entries and refcounts for every committed cluster: at most 1/32 of the data with
  // 512-byte clusters, 16-byte extended L2 entries excepted (they take 1/32 on their own).
  const uint64_t metadata = SaturatingAdd(data / 16, kMetadataHeadroom);
  return SaturatingAdd(base_file_size, SaturatingAdd(data, metadata));
}

uint64_t CommitTopWriteLimit(uint64_t top_file_size, uint64_t top_virtual_size) {
  return SaturatingAdd(top_file_size, SaturatingAdd(top_virtual_size / 16, kMetadataHeadroom));
}

StatusOr<CommitOutcome> RunCommit(const Sandbox& sandbox, const CommitRequest& request) {
  // qemu-img opens the top with its whole chain first.
  InfoRequest top;
  top.path = request.path;
  top.format = request.format;
  top.limits = request.limits;
  ChainPolicy policy;
  policy.allowed_dirs = request.allowed_dirs;
  std::string failed;
  auto discovered = DiscoverChain(sandbox, top, policy, &failed);
  if (!discovered.ok()) {
    if (failed == request.path) return discovered.status();
    return Refused("Could not open '" + request.path +
                   "': Could not open backing file: " + discovered.status().message());
  }
  const std::vector<ChainLayer>& chain = *discovered;

  size_t base = 1;
  if (request.base) {
    base = FindBase(chain, *request.base);
    if (base == 0) {
      return Refused("Did not find '" + *request.base + "' in the backing chain of '" +
                     request.path + "'");
    }
  } else if (chain.size() < 2) {
    return Refused("Image does not have a backing file");
  }
  // qemu-img opens the top read/write, which a qcow2 image with the corrupt bit refuses.
  if ((chain[0].info.result.flags & abi::kInfoCorrupt) != 0) {
    return Refused("Could not open '" + request.path +
                   "': qcow2: Image is corrupt; cannot be opened read/write");
  }
  for (const ChainLayer& layer : chain) {
    if (auto line = Unsupported(layer)) return Refused(*line);
  }
  // qemu-img empties the top unless told not to (-d, or -b); of these formats only qcow2 can
  // be emptied, a vmdk or raw top stays as it is.
  const bool empty_top = !request.drop && !request.base &&
                         chain[0].info.result.format == static_cast<uint32_t>(abi::ImageFormat::kQcow2);

  // The top first, as qemu opens it (read/write even with -d); then the base read/write.
  DeviceSet devices;
  {
    auto opened = OpenLayer(chain[0], /*open_writable=*/true, empty_top, abi::DeviceRole::kImage);
    if (!opened.ok()) return opened.status();
    devices.inputs.push_back(std::move(*opened));
  }
  auto base_device = OpenLayer(chain[base], true, true, abi::DeviceRole::kBacking);
  if (!base_device.ok()) {
    return Refused("Could not open '" + chain[base].filename + "': " +
                   base_device.status().message());
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (i == base) continue;
    auto opened = OpenLayer(chain[i], false, false, abi::DeviceRole::kBacking);
    if (!opened.ok()) {
      return Refused("Could not open '" + request.path + "': Could not open backing file: " +
                     "Could not open '" + chain[i].filename + "': " + opened.status().message());
    }
    devices.inputs.push_back(std::move(*opened));
  }
  // Never write under a running VM: QEMU's own image locks on every layer, write locks on the
  // two that change, then libvirt's view of them.
  for (size_t i = 0; i < devices.inputs.size(); ++i) {
    const size_t layer = i < base ? i : i + 1;
    INSTAR_RETURN_IF_ERROR(AcquireImageLocks(devices.inputs[i].fd.get(),
                                             i == 0 ? kWriteLocks : kCheckLocks,
                                             chain[layer].filename));
  }
  if (Status locked = AcquireImageLocks(base_device->fd.get(), kWriteLocks, chain[base].filename);
      !locked.ok()) {
    return Refused("Could not open '" + chain[base].filename + "': " + locked.message());
  }
  if (Status free = CheckNotInUseByLibvirt({chain[0].canonical, chain[base].canonical},
                                           LibvirtUriFromEnvironment());
      !free.ok()) {
    return Refused(free.message());
  }
  const uint64_t top_virtual = chain[0].info.result.virtual_size;
  if (empty_top) {
    devices.inputs[0].limits.write_limit =
        CommitTopWriteLimit(devices.inputs[0].limits.size, top_virtual);
  }
  base_device->limits.write_limit = CommitBaseWriteLimit(base_device->limits.size, top_virtual);
  devices.output = std::move(*base_device);

  abi::CommitConfig config{};
  config.magic = abi::kCommitConfigMagic;
  config.flags = (empty_top ? abi::kCommitEmptyTop : 0) |
                 (request.progress ? abi::kCommitProgress : 0);
  config.layers_above_base = static_cast<uint32_t>(base);
  config.layers_below_base = static_cast<uint32_t>(chain.size() - base - 1);
  OperationLaunch launch;
  launch.operation = &images::commit;
  launch.SetConfig(config);
  launch.expected_result = {abi::kCommitResultMagic, sizeof(abi::CommitResult)};
  launch.limits = request.limits;
  launch.hooks = request.hooks;

  INSTAR_ASSIGN_OR_RETURN(OperationOutcome run, RunOperation(sandbox, devices, launch));
  CommitOutcome outcome;
  outcome.timings = run.timings;
  outcome.debug_text = std::move(run.report.debug_text);
  if (!run.report.result.empty()) {
    abi::CommitResult result;
    std::memcpy(&result, run.report.result.data(), sizeof result);
    INSTAR_RETURN_IF_ERROR(ValidateCommitResult(result, static_cast<uint32_t>(chain.size())));
    outcome.result = result;
  }
  if (run.report.error) {
    const auto [code, detail] = *run.report.error;
    if (code >= abi::kCommitErrorCount || code == 0) {
      return GuestFailed("commit guest reported unknown error code " + std::to_string(code));
    }
    if (!outcome.result) return GuestFailed("commit guest failed without a result");
    const auto error = static_cast<abi::CommitError>(code);
    outcome.error = error;
    const uint32_t layer = outcome.result->failed_layer;
    const std::string name = layer < chain.size()
                                 ? "'" + chain[layer].filename + "'"
                                 : "a file of the backing chain of '" + request.path + "'";
    outcome.refusal.push_back(
        DescribeCommitError(error, detail, name, run.report.bytes_written != 0));
  } else if (!outcome.result) {
    return GuestFailed("commit guest completed without a result");
  } else if (run.report.completed && *run.report.completed != 0) {
    return GuestFailed("commit guest failed without an error code");
  }
  return outcome;
}

}  // namespace instar::vmm
