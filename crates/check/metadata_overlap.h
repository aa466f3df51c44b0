// qemu's metadata overlap check (the default "cached" set: header, active L1 and L2 tables,
// refcount table and blocks, snapshot table, inactive L1 tables, bitmap directory), which a
// repair must pass before each metadata write. Leaves the state's buffers alone.
// Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/check/internal/check_state.h"

namespace instar::check {

// A bit per abi::MetadataKind: structures a write may overlap (the one it rewrites).
inline constexpr uint32_t OverlapBit(abi::MetadataKind kind) {
  return 1u << static_cast<uint32_t>(kind);
}

// True when [offset, offset + size), widened to whole clusters, overlaps live metadata other
// than the `ignored` kinds; the first kind found (in qemu's order) goes to *kind.
bool OverlapsMetadata(CheckState& s, uint64_t offset, uint64_t size, abi::MetadataKind* kind,
                      uint32_t ignored = 0);

}  // namespace instar::check
