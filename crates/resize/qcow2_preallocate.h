// Fills the L2 entries of a qcow2 image's grown range [old_size, new_size), one L2 table at a
// time, each in section 5's order: refcounts (and new refcount blocks or table), data, the
// L2 table (new, or a copy of one a snapshot shares, or in place), then its L1 entry.
//  - qemu-img resize --preallocation=metadata|falloc|full: every guest cluster from the one
//    holding the old end that has no host cluster gets one, its entry pointing to it with the
//    copied flag; falloc and full write the zeros (instar has no fallocate), metadata only
//    extends the file over them.
//  - Growing over a backing file longer than the image: every cluster of the range (which
//    starts on a cluster boundary) reads as zeros (the zero flag, or the zero bitmap of
//    extended L2 entries), as qemu-img's resize writes zeroes there.
// `image` must describe the image as it is now (L1 already large enough). Reads through
// `reader`; allocates from the arena; freestanding.
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

struct PreallocateSummary {
  uint64_t data_clusters = 0;
  uint64_t l2_tables = 0;  // written (new or copied)
};

enum class FillMode {
  kSparseData,  // --preallocation=metadata
  kZeroedData,  // --preallocation=falloc and full
  kZeroFlags,   // zeroes over a longer backing file
};

base::Result<PreallocateSummary, PlanError> PlanQcow2Preallocate(const Qcow2Image& image,
                                                                 uint64_t old_size,
                                                                 uint64_t new_size,
                                                                 FillMode mode,
                                                                 const ImageReader& reader,
                                                                 base::Arena& arena,
                                                                 const StepSink& sink);

}  // namespace instar::resize
