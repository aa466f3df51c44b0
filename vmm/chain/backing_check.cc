#include "vmm/chain/backing_check.h"

namespace instar::vmm {

StatusOr<BackingChainCheck> CheckBackingChain(const Sandbox& sandbox, const InfoRequest& top,
                                              const ChainPolicy& policy) {
  std::string failed;
  uint32_t depth = 0;
  auto chain = DiscoverChain(sandbox, top, policy, &failed, &depth);
  BackingChainCheck check;
  if (!chain.ok()) {
    if (depth == 0) return chain.status();
    check.refusal = NestBackingFailure(chain.status().message(), depth);
    return check;
  }
  if (chain->size() < 2) {
    return GuestFailed("the guest reported a backing file the info guest did not see");
  }
  check.backing_virtual_size = (*chain)[1].info.result.virtual_size;
  return check;
}

std::string NestBackingFailure(const std::string& text, uint32_t depth) {
  // Each image above the one that failed adds qemu's prefix.
  std::string nested;
  for (uint32_t i = 0; i < depth; ++i) nested += "Could not open backing file: ";
  nested += text;
  return nested;
}

}  // namespace instar::vmm
