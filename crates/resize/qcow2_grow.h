// Plans growing a qcow2 image's virtual size (qemu-img resize with preallocation=off): a
// larger L1 table when the new size needs one (zero-extended in place when its clusters have
// room, otherwise copied to new clusters and the old ones freed), the refcount blocks and the
// larger refcount table the new clusters need, then the header. Steps go to the sink in the
// order of architecture section 5: new metadata and refcounts, pointers, header, frees.
// Snapshot L1 tables are untouched. Reads through `reader`; allocates from the arena;
// freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/image_write/plan_error.h"
#include "crates/image_write/qcow2_image.h"
#include "crates/image_write/step.h"

namespace instar::resize {

using image_write::ImageReader;
using image_write::PlanError;
using image_write::Qcow2Image;
using image_write::StepSink;

struct GrowSummary {
  uint64_t l1_entries = 0;        // after
  bool l1_relocated = false;
  bool refcount_table_relocated = false;
  uint64_t new_refcount_blocks = 0;
};

// `new_size` must be larger than the current virtual size and a multiple of 512. The header
// gets `header_size` as its size: new_size, or the old size when the caller still has to zero
// the new range before the guest may see it (growing over a longer backing file).
base::Result<GrowSummary, PlanError> PlanQcow2Grow(const Qcow2Image& image, uint64_t new_size,
                                                   uint64_t header_size,
                                                   const ImageReader& reader,
                                                   base::Arena& arena, const StepSink& sink);

}  // namespace instar::resize
