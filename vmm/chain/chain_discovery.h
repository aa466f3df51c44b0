// DiscoverChain: a backing chain, layer by layer, one fresh info VM per image. The host never
// parses image bytes: it takes the backing name the guest reported, refuses pseudo-paths,
// resolves it like qemu (relative to the image as named), canonicalises it, checks it against
// the allowlist, refuses cycles and caps the depth. Reused by every chain-aware operation.
// Host-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/operations/info_request.h"

namespace instar::vmm {

inline constexpr uint32_t kMaxChainDepth = 16;

struct ChainPolicy {
  // Where backing files may live; empty means the top image's directory.
  std::vector<std::string> allowed_dirs;
  uint32_t max_depth = kMaxChainDepth;  // images below the top one
};

struct ChainLayer {
  std::string filename;   // as qemu names it: the top's as given, then combined backing names
  std::string canonical;  // realpath
  ImageInfo info;
};

// `top` is the request for the top image; its limits, hooks and format apply to it, and each
// lower layer is opened with the format its parent names (probed when it names none). On
// failure the status carries the text after "Could not open 'NAME': " and `failed_filename`
// is NAME, the layer that could not be opened, and `failed_depth` (when given) its depth (0 for
// the top image, 1 for its backing file, ...).
StatusOr<std::vector<ChainLayer>> DiscoverChain(const Sandbox& sandbox, const InfoRequest& top,
                                                const ChainPolicy& policy,
                                                std::string* failed_filename,
                                                uint32_t* failed_depth = nullptr);

}  // namespace instar::vmm
