// BlockCache: a bounded, read-only cache of fixed-size, aligned blocks of an image file, for
// table entries read on demand (qcow2 L1/L2 tables, vmdk grain directory and grain tables).
// Least-recently-used eviction; bytes past the end of the file read as zeros (as qemu's file
// driver returns them). Its top blocks can be given up for good as plain scratch memory.
// Allocates once, from the arena, at Create; freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/read_error.h"

namespace instar::chain_read::internal {

class BlockCache {
 public:
  // Takes `budget` bytes from the arena and holds as many blocks of `block_size` (a power of
  // two) as fit, at least `min_blocks` (else kArenaTooSmall).
  static base::Result<BlockCache*, ReadError> Create(const base::ImageReader& reader,
                                                     base::Arena& arena, uint64_t budget,
                                                     uint64_t block_size, uint32_t min_blocks);

  // The cached bytes from file offset `offset` to the end of its block, valid until the next
  // call (callers read aligned entries, which never straddle blocks).
  base::Result<const uint8_t*, ReadError> At(uint64_t offset);

  // Gives the top blocks covering `bytes` up as scratch, for good; null when fewer than one
  // block would remain.
  uint8_t* TakeScratch(uint64_t bytes);

  uint64_t block_size() const { return block_size_; }

  BlockCache() = default;  // for the arena; use Create

 private:
  struct Slot {
    uint64_t offset = 0;    // file offset of the block
    uint64_t last_use = 0;  // 0: empty
  };

  base::ImageReader reader_;
  uint64_t block_size_ = 0;
  Slot* slots_ = nullptr;
  uint8_t* memory_ = nullptr;  // slot i holds memory_ + i * block_size_
  uint32_t slot_count_ = 0;
  uint32_t last_hit_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace instar::chain_read::internal
