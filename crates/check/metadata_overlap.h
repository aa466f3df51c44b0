// qemu's metadata overlap check (the default "cached" set: header, active L1 and L2 tables,
// refcount table and blocks, snapshot table, inactive L1 tables, bitmap directory), which a
// refcount rebuild must pass before each write. Reads the L1 and snapshot tables through the
// state's chunk buffer. Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/check/internal/check_state.h"

namespace instar::check {

// True when [offset, offset + size), widened to whole clusters, overlaps live metadata; the
// first kind found (in qemu's order) goes to *kind.
bool OverlapsMetadata(CheckState& s, uint64_t offset, uint64_t size, abi::MetadataKind* kind);

}  // namespace instar::check
