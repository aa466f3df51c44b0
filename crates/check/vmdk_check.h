// CheckVmdk: qemu-img check for a hosted sparse VMDK extent (monolithicSparse and
// streamOptimized): every allocated grain must start inside the file. qemu stops at the first
// grain that does not, reporting it and failing the check with EINVAL; a clean extent has no
// statistics. Repairs are not supported for vmdk (qemu: ENOTSUP). Work is bounded by the file
// size (grain directory entries past the end of the file read as unallocated). An extent
// naming a parent stops with kHasBackingFile unless `backing_checked` (qemu opens the parent
// before it checks). Freestanding; allocates the embedded descriptor and one grain table from
// the arena.
#pragma once

#include "abi/check.h"
#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/check/finding_sink.h"
#include "crates/check/image_access.h"

namespace instar::check {

base::Status<abi::CheckError> CheckVmdk(const ImageAccess& io, const FindingSink& sink,
                                        base::Arena& arena, abi::CheckRepair repair,
                                        bool backing_checked, abi::CheckResult* result);

}  // namespace instar::check
