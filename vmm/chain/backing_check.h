// CheckBackingChain: what qemu does when an operation opens an image together with its
// backing files (check, resize): every layer below the image must open, or the operation
// fails with "Could not open backing file: ..." before it touches the image. Uses the
// sandboxed chain discovery (allowlist, depth, cycles). Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vmm/base/status.h"
#include "vmm/chain/chain_discovery.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/operations/info_request.h"

namespace instar::vmm {

struct BackingChainCheck {
  // Set when a layer below the image could not be opened: the text after
  // "Could not open 'IMAGE': ", as qemu words it.
  std::optional<std::string> refusal;
  uint64_t backing_virtual_size = 0;  // the immediate backing file's, when it opened
};

// `top` describes the image (its limits and format apply to it); the image itself failing to
// open is an error status (the caller reported that image already, so this means it changed).
// An image without a backing file is a guest inconsistency: the caller only asks when its
// guest reported one.
StatusOr<BackingChainCheck> CheckBackingChain(const Sandbox& sandbox, const InfoRequest& top,
                                              const ChainPolicy& policy);

// qemu's wording for a layer `depth` images below the one being opened that failed with
// `text`: one "Could not open backing file: " per image above it.
std::string NestBackingFailure(const std::string& text, uint32_t depth);

}  // namespace instar::vmm
