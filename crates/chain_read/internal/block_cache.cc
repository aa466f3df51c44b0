#include "crates/chain_read/internal/block_cache.h"

#include "crates/base/checked.h"

namespace instar::chain_read::internal {

using base::Fail;

base::Result<BlockCache*, ReadError> BlockCache::Create(const base::ImageReader& reader,
                                                        base::Arena& arena, uint64_t budget,
                                                        uint64_t block_size,
                                                        uint32_t min_blocks) {
  const uint64_t per_slot = block_size + sizeof(Slot);
  uint64_t count = budget / per_slot;
  if (count > 0xFFFFFFFFu) count = 0xFFFFFFFFu;
  if (count < min_blocks) return Fail(ReadError::kArenaTooSmall, per_slot * min_blocks);
  BlockCache* cache = arena.New<BlockCache>();
  uint8_t* memory = arena.Allocate(budget, 512);
  if (cache == nullptr || memory == nullptr) return Fail(ReadError::kArenaTooSmall, budget);
  cache->reader_ = reader;
  cache->block_size_ = block_size;
  cache->memory_ = memory;
  cache->slots_ = reinterpret_cast<Slot*>(memory + count * block_size);
  cache->slot_count_ = static_cast<uint32_t>(count);
  for (uint32_t i = 0; i < cache->slot_count_; ++i) cache->slots_[i] = Slot();
  return cache;
}

base::Result<const uint8_t*, ReadError> BlockCache::At(uint64_t offset) {
  const uint64_t block = offset & ~(block_size_ - 1);
  const uint64_t within = offset - block;
  ++clock_;
  Slot& hit = slots_[last_hit_];
  if (hit.last_use != 0 && hit.offset == block) {
    hit.last_use = clock_;
    return memory_ + uint64_t{last_hit_} * block_size_ + within;
  }
  uint32_t victim = 0;
  for (uint32_t i = 0; i < slot_count_; ++i) {
    if (slots_[i].last_use != 0 && slots_[i].offset == block) {
      slots_[i].last_use = clock_;
      last_hit_ = i;
      return memory_ + uint64_t{i} * block_size_ + within;
    }
    if (slots_[i].last_use < slots_[victim].last_use) victim = i;
  }
  uint8_t* bytes = memory_ + uint64_t{victim} * block_size_;
  slots_[victim].last_use = 0;
  uint64_t n = 0;
  if (block < reader_.size) {
    n = reader_.size - block < block_size_ ? reader_.size - block : block_size_;
    if (!reader_.Read(block, n, bytes)) return Fail(ReadError::kIoError, block);
  }
  for (uint64_t i = n; i < block_size_; ++i) bytes[i] = 0;
  slots_[victim].offset = block;
  slots_[victim].last_use = clock_;
  last_hit_ = victim;
  return bytes + within;
}

uint8_t* BlockCache::TakeScratch(uint64_t bytes) {
  const uint64_t blocks = base::DivRoundUp(bytes, block_size_);
  if (blocks >= slot_count_) return nullptr;
  slot_count_ -= static_cast<uint32_t>(blocks);
  if (last_hit_ >= slot_count_) last_hit_ = 0;
  return memory_ + uint64_t{slot_count_} * block_size_;
}

}  // namespace instar::chain_read::internal
