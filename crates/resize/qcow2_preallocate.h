// Plans qemu-img resize's --preallocation=metadata|falloc|full for a qcow2 image that has
// just grown: every guest cluster from the one holding the old end up to the new end that has
// no host cluster gets one (with an L2 table where there is none), its L2 entry pointing to it
// with the copied flag, as qemu's preallocation does. `falloc` and `full` also write the data
// clusters' zeros (instar has no fallocate); `metadata` only extends the file over them. One
// L2 table at a time, each in section 5's order: refcounts (and new refcount blocks or
// table), data, the L2 table, then its L1 entry; an L2 table a snapshot shares is copied
// first. `image` must describe the image as it is now (after the grow). Reads through
// `reader`; allocates from the arena; freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/resize/plan_error.h"
#include "crates/resize/qcow2_image.h"
#include "crates/resize/step.h"

namespace instar::resize {

struct PreallocateSummary {
  uint64_t data_clusters = 0;
  uint64_t l2_tables = 0;  // written (new or copied)
};

// [old_size, image.header.size) is the range grown; `write_zeros` for falloc and full.
base::Result<PreallocateSummary, PlanError> PlanQcow2Preallocate(const Qcow2Image& image,
                                                                 uint64_t old_size,
                                                                 bool write_zeros,
                                                                 const ImageReader& reader,
                                                                 base::Arena& arena,
                                                                 const StepSink& sink);

}  // namespace instar::resize
