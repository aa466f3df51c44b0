// Finds room at the end of a qcow2 file for `count` new clusters, together with the refcount
// blocks and the (possibly relocated, larger) refcount table their refcounts need, and sets
// every new cluster's refcount to 1 in the editor. Nothing is written: the planner emits the
// editor's blocks and the table in the right order. Allocates from the arena; freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/image_write/plan_error.h"
#include "crates/image_write/qcow2_image.h"
#include "crates/image_write/refcount_editor.h"

namespace instar::image_write {

struct Allocation {
  uint64_t first_cluster = 0;    // the clusters the caller asked for: [first, first + count)
  uint64_t count = 0;
  // New refcount blocks live at clusters [blocks_first, blocks_first + blocks) and cover the
  // table indices listed in `block_indices`.
  uint64_t blocks_first = 0;
  uint64_t blocks = 0;
  const uint64_t* block_indices = nullptr;
  // A relocated refcount table, when the old one is too small: at cluster `table_first`,
  // `table_clusters` long. `table` (host order) holds every entry, old and new.
  uint64_t table_first = 0;
  uint64_t table_clusters = 0;
  uint64_t* table = nullptr;
  uint64_t table_entries = 0;
};

// `table` is a private copy of the image's refcount table that the editor reads through; on
// success, when the table is relocated, the editor has been switched to the new copy.
base::Result<Allocation, PlanError> AllocateClusters(const Qcow2Image& image, uint64_t count,
                                                     uint64_t* table, RefcountEditor& editor,
                                                     base::Arena& arena);

// The first run of `count` clusters at or after cluster `from`, wholly inside the file, whose
// refcount blocks exist and whose refcounts are zero, the way qemu's allocator reuses holes
// (a hole shorter than `count` is passed over); false when there is none.
base::Result<bool, PlanError> FindFreeRun(const Qcow2Image& image, const uint64_t* table,
                                          RefcountEditor& editor, uint64_t from, uint64_t count,
                                          uint64_t* cluster);

// Makes an allocation live, in order: the editor's blocks (every new refcount, new blocks
// included; nothing points to the new clusters yet), then the refcount-table entries for new
// blocks (in place), or the new table and the header fields that switch to it.
base::Status<PlanError> EmitAllocation(const Qcow2Image& image, const Allocation& allocation,
                                       RefcountEditor& editor, base::Arena& arena,
                                       const StepSink& sink);

// After EmitAllocation relocated the table: checks (before anything is written) or drops
// (after the switch) the old table's clusters' references.
base::Status<PlanError> CheckOldTableCounted(const Qcow2Image& image, RefcountEditor& editor);
base::Status<PlanError> FreeOldTable(const Qcow2Image& image, RefcountEditor& editor);

}  // namespace instar::image_write
