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
    // Each image above the one that failed adds qemu's prefix.
    std::string text = chain.status().message();
    for (uint32_t i = 0; i < depth; ++i) text = "Could not open backing file: " + text;
    check.refusal = text;
    return check;
  }
  if (chain->size() < 2) {
    return GuestFailed("the guest reported a backing file the info guest did not see");
  }
  check.backing_virtual_size = (*chain)[1].info.result.virtual_size;
  return check;
}

}  // namespace instar::vmm
