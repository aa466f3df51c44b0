// Qcow2Mapping: a qcow2 image's guest-to-host mapping, opened from its header (qemu's open
// checks, crates/qcow2) and walked through L1 and L2 entries read on demand from a
// BlockCache. Validates what qemu's read path validates (unaligned L2 tables and clusters,
// invalid subcluster bitmaps) and refuses tables and clusters that start past the end of the
// file. Freestanding; Open uses arena scratch (one cluster) only for the duration of the call.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/internal/block_cache.h"
#include "crates/chain_read/internal/piece.h"
#include "crates/chain_read/read_error.h"
#include "crates/qcow2/geometry.h"

namespace instar::chain_read::internal {

struct Qcow2Mapping {
  qcow2::Geometry geometry;
  uint64_t virtual_size = 0;
  uint64_t l1_offset = 0;
  uint64_t l1_entries = 0;
  uint64_t file_size = 0;
  bool zstd = false;  // compressed clusters use zstd (not read)
};

// Parses and checks the header; refuses encryption and external data files.
base::Result<Qcow2Mapping, ReadError> OpenQcow2Mapping(const base::ImageReader& reader,
                                                       base::Arena& arena);

// The cache block size for this image's tables.
uint64_t Qcow2CacheBlock(const Qcow2Mapping& m);

// The piece at `guest_offset` (below the virtual size).
base::Result<Piece, ReadError> Qcow2PieceAt(const Qcow2Mapping& m, BlockCache& cache,
                                            uint64_t guest_offset);

}  // namespace instar::chain_read::internal
