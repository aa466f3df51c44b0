// VmdkMapping: a hosted sparse VMDK extent's guest-to-host mapping (monolithicSparse, or
// streamOptimized with its header in the footer), walked through grain directory and grain
// table entries read on demand from a BlockCache. Text descriptors (flat, split or any
// multi-file vmdk) are refused. Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/internal/block_cache.h"
#include "crates/chain_read/internal/piece.h"
#include "crates/chain_read/read_error.h"

namespace instar::chain_read::internal {

struct VmdkMapping {
  uint64_t virtual_size = 0;
  uint64_t grain_bytes = 0;
  uint64_t gtes_per_gt = 0;
  uint64_t gd_offset = 0;
  uint64_t gd_entries = 0;
  uint64_t file_size = 0;
  bool zero_grains = false;  // grain table entry 1 means a zeroed grain
  bool compressed = false;   // grains are zlib streams
  bool markers = false;      // each compressed grain starts with a grain marker
};

base::Result<VmdkMapping, ReadError> OpenVmdkMapping(const base::ImageReader& reader);

// The cache block size for grain directory and grain table entries.
inline constexpr uint64_t kVmdkCacheBlock = 4096;

// The piece at `guest_offset` (below the virtual size): one grain, or the span of an absent
// grain table. A compressed grain's host is its file offset (its marker, if any).
base::Result<Piece, ReadError> VmdkPieceAt(const VmdkMapping& m, BlockCache& cache,
                                           uint64_t guest_offset);

}  // namespace instar::chain_read::internal
