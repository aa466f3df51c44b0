#include "vmm/chain/chain_discovery.h"

#include <set>

#include "vmm/chain/path_policy.h"

namespace instar::vmm {
namespace {

// The format a parent names for its backing file.
abi::ImageFormat BackingFormat(const abi::InfoResult& r) {
  if ((r.flags & abi::kInfoHasBackingFormat) == 0) return abi::ImageFormat::kAuto;
  const std::string name(r.backing_format, r.backing_format_len);
  if (name == "qcow2") return abi::ImageFormat::kQcow2;
  if (name == "raw") return abi::ImageFormat::kRaw;
  if (name == "vmdk") return abi::ImageFormat::kVmdk;
  return abi::ImageFormat::kAuto;
}

}  // namespace

StatusOr<std::vector<ChainLayer>> DiscoverChain(const Sandbox& sandbox, const InfoRequest& top,
                                                const ChainPolicy& policy,
                                                std::string* failed_filename,
                                                uint32_t* failed_depth) {
  std::vector<std::string> dirs = policy.allowed_dirs;
  if (dirs.empty()) dirs.push_back(DirectoryOf(top.path));
  const Allowlist allowlist(dirs);

  std::vector<ChainLayer> chain;
  std::set<std::string> seen;
  InfoRequest request = top;
  request.allowed_dirs = dirs;
  // The top image is named by the operator; only the names images report are policed.
  StatusOr<std::string> top_canonical = Allowlist({"/"}).Admit(top.path);
  std::string canonical = top_canonical.ok() ? *top_canonical : top.path;
  *failed_filename = top.path;
  if (failed_depth != nullptr) *failed_depth = 0;
  for (;;) {
    seen.insert(canonical);
    ChainLayer layer;
    layer.filename = request.path;
    layer.canonical = canonical;
    INSTAR_ASSIGN_OR_RETURN(layer.info, RunInfo(sandbox, request));
    const abi::InfoResult& r = layer.info.result;
    chain.push_back(std::move(layer));
    if ((r.flags & abi::kInfoHasBackingFile) == 0) return chain;

    const std::string name(r.backing_file, r.backing_file_len);
    const std::string next = CombinePath(request.path, name);
    *failed_filename = next;
    if (failed_depth != nullptr) *failed_depth = static_cast<uint32_t>(chain.size());
    if (IsPseudoPath(name)) {
      return Status(StatusCode::kImageRejected,
                    "backing file names a protocol or json: pseudo-path, which instar refuses");
    }
    if (chain.size() > policy.max_depth) {
      return Status(StatusCode::kImageRejected,
                    "backing chain is deeper than " + std::to_string(policy.max_depth) +
                        " images");
    }
    StatusOr<std::string> admitted = allowlist.Admit(next);
    if (!admitted.ok()) {
      if (admitted.status().code() == StatusCode::kNotFound) {
        // qemu's shape: the open error repeats the name.
        return Status(StatusCode::kNotFound,
                      "Could not open '" + next + "': " + admitted.status().message());
      }
      return Status(StatusCode::kImageRejected, admitted.status().message());
    }
    if (seen.count(*admitted) != 0) {
      return Status(StatusCode::kImageRejected, "backing chain has a cycle through '" + next + "'");
    }
    canonical = *admitted;
    request.path = next;
    request.format = BackingFormat(r);
  }
}

}  // namespace instar::vmm
