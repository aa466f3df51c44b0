#include "vmm/operations/rebase_request.h"

#include <cstring>
#include <set>

#include "ops/rebase/rebase_image.h"
#include "vmm/chain/backing_check.h"
#include "vmm/chain/chain_discovery.h"
#include "vmm/chain/path_policy.h"
#include "vmm/operations/info_request.h"
#include "vmm/operations/rebase_messages.h"
#include "vmm/safety/libvirt_guard.h"
#include "vmm/safety/qemu_image_lock.h"
#include "vmm/transport/device.h"

namespace instar::vmm {
namespace {

// Room for a header cluster (qcow2's largest) beyond the end of the file.
constexpr uint64_t kHeaderHeadroom = 2ull << 20;
// Beyond the copied data: a relocated refcount table and cluster alignment.
constexpr uint64_t kCopyHeadroom = 64ull << 20;

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

abi::ImageFormat FormatOf(const ImageInfo& info) {
  return static_cast<abi::ImageFormat>(info.result.format);
}

// qemu-img 7.2's driver names for -F, as `qemu-img --help` lists them.
const std::set<std::string>& QemuFormatNames() {
  static const std::set<std::string> names = {
      "blkdebug", "blklogwrites", "blkverify", "bochs", "cloop", "compress",
      "copy-before-write", "copy-on-read", "dmg", "file", "ftp", "ftps", "gluster",
      "host_cdrom", "host_device", "http", "https", "iscsi", "iser", "luks", "nbd", "nfs",
      "null-aio", "null-co", "nvme", "parallels", "preallocate", "qcow", "qcow2", "qed",
      "quorum", "raw", "rbd", "replication", "snapshot-access", "ssh", "throttle", "vdi",
      "vhdx", "vmdk", "vpc", "vvfat"};
  return names;
}

RebaseMessage Refusal(std::string line, bool while_opening = false) {
  return RebaseMessage{{std::move(line)}, while_opening};
}

// Attaches one chain layer read-only, under QEMU's shared read locks unless -U.
Status AttachLayer(DeviceSet& devices, const ChainLayer& layer, bool force_share) {
  INSTAR_ASSIGN_OR_RETURN(Device device,
                          OpenDevice(layer.canonical, /*writable=*/false, abi::DeviceRole::kBacking));
  if (!force_share) {
    INSTAR_RETURN_IF_ERROR(AcquireImageLocks(device.fd.get(), kCheckLocks, layer.filename));
  }
  device.format = FormatOf(layer.info);
  devices.inputs.push_back(std::move(device));
  return Status::Ok();
}

// The guest reads raw, qcow2 and single-file VMDK layers; anything else in a chain it must
// read is refused before the overlay is touched.
std::optional<RebaseMessage> UnreadableLayer(const std::vector<ChainLayer>& layers) {
  for (const ChainLayer& layer : layers) {
    const abi::ImageFormat format = FormatOf(layer.info);
    const bool multi_file = format == abi::ImageFormat::kVmdk &&
                            (layer.info.result.flags & abi::kInfoVmdkDescriptorFile) != 0;
    if (multi_file) {
      return Refusal("instar cannot read the backing file '" + layer.filename +
                     "': only single-file (monolithicSparse) VMDK images are supported");
    }
  }
  return std::nullopt;
}

struct Chains {
  std::vector<ChainLayer> old_chain;  // below the overlay
  std::vector<ChainLayer> new_chain;  // empty when it is a suffix of the old chain
  std::optional<size_t> new_in_old;   // NEW is old_chain[*new_in_old]: its slots are shared
  bool new_attached = false;
};

// The new backing file's chain, resolved as qemu-img resolves it: relative to the overlay,
// reusing the overlay's own chain when NEW is one of its members.
// Its layers are attached (and locked) as qemu-img opens them, after the old chain's.
StatusOr<bool> DiscoverNewChain(const Sandbox& sandbox, const RebaseRequest& request,
                                const std::vector<ChainLayer>& overlay_chain, Chains* chains,
                                DeviceSet* devices, RebaseOutcome* outcome) {
  const std::string real = CombinePath(request.path, *request.backing);
  const Allowlist allowlist(request.allowed_dirs.empty()
                                ? std::vector<std::string>{DirectoryOf(request.path)}
                                : request.allowed_dirs);
  StatusOr<std::string> admitted = allowlist.Admit(real);
  if (!admitted.ok()) {
    outcome->new_backing_failure = NewBackingFailure{real, admitted.status()};
    return false;
  }
  for (size_t i = 1; i < overlay_chain.size(); ++i) {
    if (overlay_chain[i].canonical == *admitted) {
      chains->new_in_old = i - 1;
      return true;
    }
  }
  InfoRequest top;
  top.path = real;
  top.force_share = true;  // reading only; the locks are taken when it is attached
  top.limits = request.limits;
  if (request.backing_format) {
    if (*request.backing_format == "qcow2") top.format = abi::ImageFormat::kQcow2;
    else if (*request.backing_format == "raw") top.format = abi::ImageFormat::kRaw;
    else if (*request.backing_format == "vmdk") top.format = abi::ImageFormat::kVmdk;
    else {
      outcome->refusal = Refusal("instar cannot read backing files of format '" +
                                 *request.backing_format + "'");
      return false;
    }
  }
  ChainPolicy policy;
  policy.allowed_dirs = request.allowed_dirs;
  std::string failed;
  uint32_t depth = 0;
  auto chain = DiscoverChain(sandbox, top, policy, &failed, &depth);
  if (!chain.ok()) {
    // A layer below NEW: its text is complete (no "Could not open 'NEW': " to add).
    outcome->new_backing_failure =
        depth == 0 ? NewBackingFailure{real, chain.status()}
                   : NewBackingFailure{real, Status(StatusCode::kImageRejected,
                                                    NestBackingFailure(chain.status().message(),
                                                                       depth))};
    return false;
  }
  for (const ChainLayer& layer : *chain) {
    if (Status attached = AttachLayer(*devices, layer, request.force_share); !attached.ok()) {
      outcome->new_backing_failure = NewBackingFailure{real, attached};
      return false;
    }
  }
  chains->new_chain = std::move(*chain);
  return true;
}

}  // namespace

bool IsQemuFormatName(const std::string& name) { return QemuFormatNames().count(name) != 0; }

Status ValidateRebaseResult(const abi::RebaseResult& r) {
  if (r.magic != abi::kRebaseResultMagic) return GuestFailed("rebase result has a bad magic");
  const auto format = static_cast<abi::ImageFormat>(r.format);
  if (format != abi::ImageFormat::kAuto && format != abi::ImageFormat::kRaw &&
      format != abi::ImageFormat::kQcow2 && format != abi::ImageFormat::kVmdk) {
    return GuestFailed("rebase result names no known format");
  }
  if (r.flags != 0) return GuestFailed("rebase result has unknown flags");
  if (r.clusters_copied > r.clusters_compared) {
    return GuestFailed("rebase result copied more clusters than it compared");
  }
  return Status::Ok();
}

uint64_t RebaseWriteLimit(uint64_t overlay_file_size, uint64_t overlay_virtual_size,
                          bool unsafe) {
  // Unsafe: the header cluster. Safe: at most every guest cluster copied, with its L2 tables
  // and refcount blocks (1/32 of the data covers 512-byte clusters), and headroom.
  uint64_t room = kHeaderHeadroom;
  if (!unsafe) {
    room = SaturatingAdd(SaturatingAdd(overlay_virtual_size, overlay_virtual_size / 32),
                         kCopyHeadroom);
  }
  return SaturatingAdd(overlay_file_size, room);
}

StatusOr<RebaseOutcome> RunRebase(const Sandbox& sandbox, const RebaseRequest& request) {
  RebaseOutcome outcome;
  // qemu-img opens the overlay read/write first: never write under a running VM.
  DeviceSet devices;
  INSTAR_ASSIGN_OR_RETURN(Device overlay,
                          OpenDevice(request.path, /*writable=*/true, abi::DeviceRole::kImage));
  INSTAR_RETURN_IF_ERROR(AcquireImageLocks(overlay.fd.get(), kWriteLocks, request.path));
  INSTAR_RETURN_IF_ERROR(CheckNotInUseByLibvirt({request.path}, LibvirtUriFromEnvironment()));

  // The overlay as qemu-img opens it: alone (-u), or with its whole backing chain.
  InfoRequest top;
  top.path = request.path;
  top.format = request.format;
  top.force_share = true;  // this run holds the overlay's locks
  top.limits = request.limits;
  top.allowed_dirs = request.allowed_dirs;
  std::vector<ChainLayer> overlay_chain;
  if (request.unsafe) {
    ChainLayer layer;
    layer.filename = request.path;
    INSTAR_ASSIGN_OR_RETURN(layer.info, RunInfo(sandbox, top));
    overlay_chain.push_back(std::move(layer));
  } else {
    ChainPolicy policy;
    policy.allowed_dirs = request.allowed_dirs;
    std::string failed;
    uint32_t depth = 0;
    auto chain = DiscoverChain(sandbox, top, policy, &failed, &depth);
    if (!chain.ok()) {
      if (depth == 0) return chain.status();
      outcome.refusal = Refusal(NestBackingFailure(chain.status().message(), depth), true);
      return outcome;
    }
    overlay_chain = std::move(*chain);
  }
  // qemu-img holds the old chain open (and locked) with the overlay.
  for (size_t i = 1; i < overlay_chain.size(); ++i) {
    if (Status attached = AttachLayer(devices, overlay_chain[i], request.force_share);
        !attached.ok()) {
      outcome.refusal = Refusal("Could not open backing file: " + attached.message(), true);
      return outcome;
    }
  }
  if (request.backing_format && !IsQemuFormatName(*request.backing_format)) {
    outcome.refusal = Refusal("Invalid format name: '" + *request.backing_format + "'");
    return outcome;
  }
  const bool has_backing = request.backing && !request.backing->empty();
  Chains chains;
  chains.old_chain.assign(overlay_chain.begin() + 1, overlay_chain.end());
  if (!request.unsafe && has_backing) {
    INSTAR_ASSIGN_OR_RETURN(bool found, DiscoverNewChain(sandbox, request, overlay_chain,
                                                         &chains, &devices, &outcome));
    if (!found) return outcome;
    chains.new_attached = true;
  }
  const std::string quoted = request.backing ? *request.backing : "(null)";
  if (has_backing && !request.backing_format) {
    outcome.refusal = Refusal("Could not change the backing file to '" + quoted +
                              "': backing format must be specified");
    return outcome;
  }
  // qemu's vmdk driver opens a backing file as a vmdk whatever the overlay says.
  const bool vmdk_overlay = FormatOf(overlay_chain[0].info) == abi::ImageFormat::kVmdk;
  if (vmdk_overlay && has_backing && *request.backing_format != "vmdk") {
    outcome.refusal = Refusal("Could not change the backing file to '" + quoted +
                              "': a VMDK image's backing file must be a VMDK image");
    return outcome;
  }
  // A VMDK overlay records its new parent's CID: attach the new backing file when it is a
  // VMDK instar may open (qemu-img create does the same; without it the CID reads "none").
  if (request.unsafe && has_backing && vmdk_overlay) {
    const std::string real = CombinePath(request.path, *request.backing);
    const Allowlist allowlist(request.allowed_dirs.empty()
                                  ? std::vector<std::string>{DirectoryOf(request.path)}
                                  : request.allowed_dirs);
    if (auto admitted = allowlist.Admit(real); admitted.ok()) {
      ChainLayer layer;
      layer.filename = real;
      layer.canonical = *admitted;
      InfoRequest parent;
      parent.path = real;
      parent.format = abi::ImageFormat::kVmdk;
      parent.force_share = true;
      parent.limits = request.limits;
      if (auto info = RunInfo(sandbox, parent); info.ok()) {
        layer.info = std::move(*info);
        if (!UnreadableLayer({layer}) && AttachLayer(devices, layer, request.force_share).ok()) {
          chains.new_chain.push_back(std::move(layer));
          chains.new_attached = true;
        }
      }
    }
  }
  if (auto refused = UnreadableLayer(chains.old_chain)) {
    outcome.refusal = std::move(refused);
    return outcome;
  }
  if (auto refused = UnreadableLayer(chains.new_chain)) {
    outcome.refusal = std::move(refused);
    return outcome;
  }

  abi::RebaseConfig config{};
  config.magic = abi::kRebaseConfigMagic;
  config.requested_format = static_cast<uint32_t>(request.format);
  config.flags = (request.unsafe ? abi::kRebaseUnsafe : 0) |
                 (request.hooks.on_progress ? abi::kRebaseProgress : 0);
  if (has_backing) {
    config.flags |= abi::kRebaseHasBacking | abi::kRebaseHasFormat;
    config.new_backing_name_length = static_cast<uint32_t>(request.backing->size());
    if (request.backing->size() >= abi::kRebaseNameBytes) {
      // Above qemu's 1023 bytes: its EINVAL, before anything is read.
      outcome.error = abi::RebaseError::kBackingPathTooLong;
      outcome.refusal = DescribeRebaseError(*outcome.error, 0, quoted, 0);
      return outcome;
    }
    std::memcpy(config.new_backing_name, request.backing->data(), request.backing->size());
    config.new_format_name_length = static_cast<uint32_t>(request.backing_format->size());
    std::memcpy(config.new_format_name, request.backing_format->data(),
                request.backing_format->size());
  }
  config.old_chain_first = 0;
  config.old_chain_count = static_cast<uint32_t>(chains.old_chain.size());
  if (chains.new_in_old) {
    config.new_chain_first = static_cast<uint32_t>(*chains.new_in_old);
    config.new_chain_count = static_cast<uint32_t>(chains.old_chain.size() - *chains.new_in_old);
  } else {
    config.new_chain_first = config.old_chain_count;
    config.new_chain_count = static_cast<uint32_t>(chains.new_chain.size());
  }
  if (chains.new_attached) {
    config.flags |= abi::kRebaseNewChainAttached;
    const ChainLayer& new_top =
        chains.new_in_old ? chains.old_chain[*chains.new_in_old] : chains.new_chain[0];
    config.new_format = static_cast<uint32_t>(FormatOf(new_top.info));
  }

  overlay.limits.write_limit = RebaseWriteLimit(
      overlay.limits.size, overlay_chain[0].info.result.virtual_size, request.unsafe);
  overlay.format = request.format;
  devices.output = std::move(overlay);
  OperationLaunch launch;
  launch.operation = &images::rebase;
  launch.SetConfig(config);
  launch.expected_result = {abi::kRebaseResultMagic, sizeof(abi::RebaseResult)};
  launch.limits = request.limits;
  launch.hooks = request.hooks;
  INSTAR_ASSIGN_OR_RETURN(OperationOutcome run, RunOperation(sandbox, devices, launch));
  outcome.timings = run.timings;
  outcome.debug_text = std::move(run.report.debug_text);
  if (!run.report.result.empty()) {
    abi::RebaseResult result;
    std::memcpy(&result, run.report.result.data(), sizeof result);
    INSTAR_RETURN_IF_ERROR(ValidateRebaseResult(result));
    outcome.result = result;
  }
  if (run.report.error) {
    const auto [code, detail] = *run.report.error;
    if (code >= abi::kRebaseErrorCount || code == 0) {
      return GuestFailed("rebase guest reported unknown error code " + std::to_string(code));
    }
    const auto error = static_cast<abi::RebaseError>(code);
    if (error == abi::RebaseError::kQcow2HeaderRefused) {
      return GuestFailed("the rebase guest refused a qcow2 header the info guest accepts");
    }
    outcome.error = error;
    outcome.refusal = DescribeRebaseError(error, detail, quoted, config.new_chain_first);
  } else if (!outcome.result) {
    return GuestFailed("rebase guest completed without a result");
  } else if (run.report.completed && *run.report.completed != 0) {
    return GuestFailed("rebase guest failed without an error code");
  }
  return outcome;
}

}  // namespace instar::vmm
