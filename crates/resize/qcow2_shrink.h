// Plans shrinking a qcow2 image's virtual size (qemu-img resize --shrink). The header's size
// is written first, so an interrupted shrink shows either the old image or the new one; then
// every L2 entry past the new end loses its pointer (partly used L2 tables in place, whole
// tables by clearing their L1 entries) and only after that are the data clusters and tables
// dereferenced. Finally the file is cut after the last cluster still in use. The L1 table
// keeps its size, as qemu's does. Snapshot tables are untouched: a cluster a snapshot still
// uses keeps its refcount from the snapshot, and an L2 table a snapshot shares that the new
// end cuts through is copied first. Refcount blocks left empty leave the refcount table, as
// with qemu. Reads through `reader`; allocates from the arena; freestanding.
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

struct ShrinkSummary {
  uint64_t l2_tables_dropped = 0;
  uint64_t entries_dropped = 0;   // L2 entries cleared in partly used tables
  uint64_t new_file_size = 0;     // the file size after the cut (unchanged when nothing to cut)
};

// `new_size` must be smaller than the current virtual size and a multiple of 512.
base::Result<ShrinkSummary, PlanError> PlanQcow2Shrink(const Qcow2Image& image,
                                                       uint64_t new_size,
                                                       const ImageReader& reader,
                                                       base::Arena& arena,
                                                       const StepSink& sink);

}  // namespace instar::resize
