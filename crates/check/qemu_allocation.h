// Where qemu's cluster allocator puts a new structure right after a check (qcow2_alloc_clusters
// with the free-cluster index at 0), and the refcount blocks it adds on the way: a cluster under
// a missing refcount block counts as free; counting it needs a new block, which goes into the
// next free cluster (describing itself when it lies in the range it covers, counted in another
// block otherwise), and when the refcount table is too short for it, a larger table and the
// blocks that describe it go to the first block-aligned offset past everything in use (qemu's
// qcow2_refcount_area), the old table then freed. After every added block the search starts
// again, as qemu's does. Writes follow qemu's order, each flushed before the pointer to it:
// block, then table entry; blocks, then table, then header. The placement is qemu's rather
// than image_write's cluster_allocator (which appends at the end of the file) because a repaired
// image must match qemu's byte for byte. Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/check/internal/check_state.h"

namespace instar::check {

class QemuAllocation {
 public:
  explicit QemuAllocation(CheckState& s) : s_(s) {}

  // Finds the `count` clusters qemu would allocate and gives them the refcount blocks they
  // need; their own refcounts stay 0 for the caller to set. False with failure() set.
  bool PrepareRun(uint64_t count, uint64_t* first);
  abi::SnapshotUpdateFailure failure() const { return failure_; }

 private:
  enum class Outcome { kDone, kAgain, kFailed };

  bool FindRun(uint64_t count, uint64_t* first);
  Outcome EnsureBlocks(uint64_t first, uint64_t count, bool increment, uint32_t depth);
  Outcome AddBlock(uint64_t cluster, uint32_t depth);
  Outcome GrowTable(uint64_t index, uint64_t block, uint64_t cluster);
  bool WriteTable(uint64_t offset, uint64_t entries, uint64_t copied, uint64_t index,
                  uint64_t block, uint64_t area_index, uint64_t area_blocks, uint64_t area_first);
  Outcome Fail(abi::SnapshotUpdateFailure why) {
    failure_ = why;
    return Outcome::kFailed;
  }

  CheckState& s_;
  uint64_t next_free_ = 0;  // qemu's free_cluster_index
  abi::SnapshotUpdateFailure failure_ = abi::SnapshotUpdateFailure::kIoError;
};

// qemu's qcow2_free_clusters: one reference fewer for each cluster of [offset, offset+bytes);
// a cluster reaching zero is discarded (zeroed) when `discard`. A zero refcount is left alone
// (qemu refuses the underflow). Lowers `*next_free` to a freed cluster, when given.
bool FreeClusters(CheckState& s, uint64_t offset, uint64_t bytes, bool discard,
                  uint64_t* next_free);

}  // namespace instar::check
