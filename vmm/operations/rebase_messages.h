// The message for every error the rebase guest can report; exhaustive over abi::RebaseError.
// Host-only.
#pragma once

#include <cstdint>
#include <string>

#include "abi/rebase.h"
#include "vmm/operations/rebase_request.h"

namespace instar::vmm {

// `backing` is the -b name as qemu-img quotes it ("(null)" when none was given);
// `new_chain_first` tells old-chain slots from new-chain ones.
RebaseMessage DescribeRebaseError(abi::RebaseError error, uint64_t detail,
                                  const std::string& backing, uint32_t new_chain_first);

}  // namespace instar::vmm
