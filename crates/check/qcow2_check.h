// CheckQcow2: qemu-img check for qcow2, as a pure planner over ImageAccess. It rebuilds the
// reference count of every host cluster from all metadata (header, L1/L2 of the active image
// and every snapshot, compressed clusters, refcount table and blocks, snapshot table, bitmap
// directory and tables), compares it with the stored refcounts, checks OFLAG_COPIED, and with
// a repair mode fixes what qemu-img fixes, in qemu's write order. Findings go to a sink in
// qemu's order; the counts and statistics come back in an abi::CheckResult.
//
// Memory: the computed counts cover a window of host clusters at the image's refcount width;
// when the whole file does not fit the arena the walk runs once per window, so guest memory is
// bounded whatever the image size (a repair that must rebuild the refcount structure needs a
// single window). All work is bounded by the file size. Freestanding; allocates only from the
// caller's arena.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/check/finding_sink.h"
#include "crates/check/image_access.h"

namespace instar::check {

struct CheckOptions {
  abi::CheckRepair repair = abi::CheckRepair::kNone;
  uint64_t max_clusters_per_pass = 0;  // 0: as many as the arena holds
  // The host opened the backing chain; otherwise an image with a backing file stops the check
  // with kHasBackingFile before anything is read past the header or written.
  bool backing_checked = false;
};

// Fills `result` like qemu-img check (including the double check after a repair that fixed
// something). Errors are the cases where qemu-img cannot open the image at all.
base::Status<abi::CheckError> CheckQcow2(const ImageAccess& io, const FindingSink& sink,
                                         base::Arena& arena, const CheckOptions& options,
                                         abi::CheckResult* result);

}  // namespace instar::check
