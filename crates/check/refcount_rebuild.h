// The refcount rebuild (qemu's rebuild_refcount_structure, what `-r all` does when a cluster
// is referenced but has no stored refcount, or the refcount table itself is broken), window by
// window. It places new refcount blocks and the new table exactly where qemu's would go:
// blocks, in ascending order, each in the first free cluster at or after the later of its own
// block's start and the previous allocation; then the table in the first run of free clusters
// from the start of the file, repeated (after giving the clusters it took a block where they
// had none) until the table stops growing. Only then is anything written: every block (the
// final count of its clusters, one window slice at a time), the table, a flush, and the
// header's table offset and size last, so an interruption leaves the old structure in charge.
// The old structure becomes leaked clusters, which the caller repairs. Windows of the count
// that are not in memory are recounted by a silent walk. Freestanding; the new table and a
// queue of the same size come from the arena.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/check/internal/check_state.h"

namespace instar::check {

enum class RebuildOutcome {
  kRebuilt,
  kFailed,  // a read or write failed, or qemu's overlap check refused a write (reported)
  kNoRoom,  // the new table (or the queue) needs more entries than planned, or the arena
            // cannot hold them; nothing was written
};

// `table_entries`: the most refcount table entries the rebuild may need.
RebuildOutcome RebuildRefcountStructure(CheckState& s, base::Arena& arena,
                                        uint64_t table_entries);

}  // namespace instar::check
