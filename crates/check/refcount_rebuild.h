// The refcount rebuild (qemu's rebuild_refcount_structure, what `-r all` does when a cluster
// is referenced but has no stored refcount, or the refcount table itself is broken): new
// refcount blocks are allocated in clusters the computed count shows free (or past the end),
// written as slices of the computed count, then a new refcount table, then the header's table
// offset and size last, so an interruption leaves the old structure in charge. The old
// structure becomes leaked clusters, which the caller repairs. Needs the whole count in one
// window based at cluster 0. Freestanding; allocates the new table from the arena.
#pragma once

#include "crates/base/arena.h"
#include "crates/check/internal/check_state.h"

namespace instar::check {

// False when a write failed or the window cannot hold the new structure.
bool RebuildRefcountStructure(CheckState& s, base::Arena& arena);

}  // namespace instar::check
