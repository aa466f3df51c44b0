// RefcountEditor: reads and changes qcow2 refcounts through a bounded cache of refcount
// blocks, read on demand, so the image size is not limited by guest memory. New refcount
// blocks (for clusters past every existing block) are added explicitly by the allocator.
// Changes reach the image only through Flush (or eviction, when the caller allows it), as
// whole-block writes in the phase the caller names. Allocates from the arena it is given;
// freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/qcow2/geometry.h"
#include "crates/image_write/plan_error.h"
#include "crates/image_write/step.h"

namespace instar::image_write {

// How many blocks of this geometry the editor should cache: half of what is left in the
// arena, at most kMaxCacheBlocks (lookups scan the cache).
inline constexpr uint32_t kMaxCacheBlocks = 4096;
uint32_t CacheBlocksFor(const qcow2::Geometry& geometry, const base::Arena& arena);

class RefcountEditor {
 public:
  // `table` holds `table_entries` refcount-table entries (host offsets, 0 = no block), owned
  // by the caller and possibly extended by it later. `cache_blocks` bounds the cache.
  RefcountEditor(const ImageReader& reader, const qcow2::Geometry& geometry,
                 uint64_t* table, uint64_t table_entries, base::Arena& arena,
                 uint32_t cache_blocks);

  // Refcount of host cluster `cluster` (0 when no block covers it).
  base::Result<uint64_t, PlanError> Get(uint64_t cluster);
  // Adds `delta` (+1 or -1) to the refcount of `cluster`; fails on wrap-around, or when no
  // block covers it.
  base::Status<PlanError> Adjust(uint64_t cluster, int delta);
  // Registers a new, zeroed refcount block for block index `index`, stored at host offset
  // `host_offset`; the caller makes the refcount table point to it.
  base::Status<PlanError> AddNewBlock(uint64_t index, uint64_t host_offset);
  // Writes every changed block to `sink` in `phase`, oldest first.
  base::Status<PlanError> Flush(const StepSink& sink, Phase phase);
  // When set, a full cache writes a changed block out (in `phase`) to make room; otherwise a
  // full cache holding only changed blocks is kScratchTooSmall.
  void AllowEvictionWrites(const StepSink* sink, Phase phase) {
    evict_sink_ = sink;
    evict_phase_ = phase;
  }

  // Forgets the cached copy of block `index`, unwritten changes included: the caller dropped
  // the block from the table.
  void Forget(uint64_t index);
  // Forgets every cached block (which must all be clean): another planner changed the
  // refcounts on disk.
  void ForgetAll();

  void SetTable(uint64_t* table, uint64_t entries) {
    table_ = table;
    table_entries_ = entries;
  }
  uint64_t blocks_written() const { return blocks_written_; }

 private:
  struct Slot {
    uint64_t index = 0;
    uint64_t host_offset = 0;
    uint8_t* bytes = nullptr;
    uint64_t last_use = 0;
    bool used = false;
    bool dirty = false;
  };
  base::Result<Slot*, PlanError> Lookup(uint64_t index, bool create_new, uint64_t host_offset);
  base::Result<Slot*, PlanError> FreeSlot();
  base::Status<PlanError> WriteSlot(Slot& slot, const StepSink& sink, Phase phase);

  ImageReader reader_;
  qcow2::Geometry geometry_;
  uint64_t* table_;
  uint64_t table_entries_;
  Slot* slots_ = nullptr;
  uint32_t slot_count_ = 0;
  uint64_t clock_ = 0;
  Slot* last_hit_ = nullptr;  // refcount lookups come in runs on the same block
  uint64_t blocks_written_ = 0;
  const StepSink* evict_sink_ = nullptr;
  Phase evict_phase_ = Phase::kRefcountDecrement;
};

}  // namespace instar::image_write
