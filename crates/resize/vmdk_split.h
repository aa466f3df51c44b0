// Growing a twoGbMaxExtentSparse VMDK the way qemu-img create lays one out: every extent but
// the last holds kSplitExtentSectors (2 GiB), so the last extent grows up to that size and the
// rest of the growth goes to new extents of that size, the final one holding the remainder.
// A new extent is what qemu-img create writes: a header, an empty embedded-descriptor area,
// the redundant grain directory and its tables, the grain directory and its tables, zeros up
// to the first grain. Pure, freestanding; steps go to the caller's sink.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/image_write/plan_error.h"
#include "crates/image_write/step.h"

namespace instar::resize {

inline constexpr uint64_t kSplitExtentSectors = 4194304;  // 2 GiB

struct SplitGrowth {
  uint64_t last_extent_sectors = 0;  // the old last extent's new capacity
  uint32_t new_extents = 0;
  uint64_t final_extent_sectors = 0;  // the last new extent's capacity (the others: the split)
};

// `old_total` and `new_total` in sectors, new_total > old_total; `last` is the last extent's
// capacity. False when the growth would need more than `max_new_extents` new extents.
bool PlanSplitGrowth(uint64_t old_total, uint64_t new_total, uint64_t last,
                     uint32_t max_new_extents, SplitGrowth* out);

// The capacity of new extent `index` (0-based among the new ones).
uint64_t NewExtentSectors(const SplitGrowth& growth, uint32_t index);

// The bytes of a new extent of `capacity` sectors (qemu-img create's defaults: 64 KiB grains,
// 512 entries per grain table, a redundant directory), written to an empty device.
base::Result<uint64_t, image_write::PlanError> PlanNewSparseExtent(
    uint64_t capacity, base::Arena& arena, const image_write::StepSink& sink);

}  // namespace instar::resize
