// Piece: what one table entry (or one absent table) of an image says about the guest bytes
// from a queried offset to the end of what that entry maps. Layer::Map merges consecutive
// pieces into runs. Header-only, freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/chain_read/layer.h"

namespace instar::chain_read::internal {

struct Piece {
  ExtentKind kind = ExtentKind::kUnallocated;
  uint64_t host = 0;    // kData: host offset of the queried byte; kCompressed: data start
  uint64_t length = 0;  // > 0; may run past the virtual size (the caller clips)
  uint64_t compressed_bytes = 0;  // kCompressed (qcow2): bytes qemu reads at `host`
};

}  // namespace instar::chain_read::internal
