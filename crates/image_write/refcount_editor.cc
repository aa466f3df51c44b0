#include "crates/image_write/refcount_editor.h"

#include "crates/base/checked.h"
#include "crates/qcow2/entries.h"

namespace instar::image_write {

using base::Fail;

uint32_t CacheBlocksFor(const qcow2::Geometry& geometry, const base::Arena& arena) {
  const uint64_t per_block = geometry.cluster_size + 64;
  const uint64_t blocks = arena.remaining() / 2 / per_block;
  return blocks > kMaxCacheBlocks ? kMaxCacheBlocks : static_cast<uint32_t>(blocks);
}

RefcountEditor::RefcountEditor(const ImageReader& reader, const qcow2::Geometry& geometry,
                               uint64_t* table, uint64_t table_entries, base::Arena& arena,
                               uint32_t cache_blocks)
    : reader_(reader), geometry_(geometry), table_(table), table_entries_(table_entries) {
  auto* raw = arena.Allocate(uint64_t{sizeof(Slot)} * cache_blocks, alignof(Slot));
  if (raw != nullptr) {
    slots_ = reinterpret_cast<Slot*>(raw);
    slot_count_ = cache_blocks;
    for (uint32_t i = 0; i < cache_blocks; ++i) new (&slots_[i]) Slot();
    // Buffers are carved now so that a lookup never needs the arena again.
    for (uint32_t i = 0; i < cache_blocks; ++i) {
      slots_[i].bytes = arena.Allocate(geometry_.cluster_size, 512);
      if (slots_[i].bytes == nullptr) {
        slot_count_ = i;
        break;
      }
    }
  }
}

base::Status<PlanError> RefcountEditor::WriteSlot(Slot& slot, const StepSink& sink,
                                                  Phase phase) {
  Step step;
  step.kind = StepKind::kWrite;
  step.phase = phase;
  step.offset = slot.host_offset;
  step.length = geometry_.cluster_size;
  step.bytes = slot.bytes;
  if (!sink.Emit(step)) return Fail(PlanError::kIoError);
  slot.dirty = false;
  ++blocks_written_;
  return {};
}

base::Result<RefcountEditor::Slot*, PlanError> RefcountEditor::FreeSlot() {
  Slot* victim = nullptr;
  for (uint32_t i = 0; i < slot_count_; ++i) {
    Slot& s = slots_[i];
    if (!s.used) return &s;
    // Clean blocks are dropped before changed ones are written out.
    if (victim == nullptr || (victim->dirty && !s.dirty) ||
        (victim->dirty == s.dirty && s.last_use < victim->last_use)) {
      victim = &s;
    }
  }
  if (victim == nullptr) return Fail(PlanError::kScratchTooSmall);
  if (victim->dirty) {
    if (evict_sink_ == nullptr) return Fail(PlanError::kScratchTooSmall);
    TRY_STATUS(WriteSlot(*victim, *evict_sink_, evict_phase_));
  }
  victim->used = false;
  return victim;
}

base::Result<RefcountEditor::Slot*, PlanError> RefcountEditor::Lookup(uint64_t index,
                                                                      bool create_new,
                                                                      uint64_t host_offset) {
  if (!create_new && last_hit_ != nullptr && last_hit_->used && last_hit_->index == index) {
    last_hit_->last_use = ++clock_;
    return last_hit_;
  }
  for (uint32_t i = 0; i < slot_count_; ++i) {
    if (slots_[i].used && slots_[i].index == index) {
      if (create_new) return Fail(PlanError::kCorruptRefcountTable, index);
      slots_[i].last_use = ++clock_;
      last_hit_ = &slots_[i];
      return &slots_[i];
    }
  }
  if (!create_new) {
    if (index >= table_entries_ || table_[index] == 0) return static_cast<Slot*>(nullptr);
    host_offset = table_[index];
  }
  Slot* slot;
  TRY(slot, FreeSlot());
  if (create_new) {
    __builtin_memset(slot->bytes, 0, geometry_.cluster_size);
  } else if (!reader_.Read(host_offset, geometry_.cluster_size, slot->bytes)) {
    return Fail(PlanError::kIoError, host_offset);
  }
  slot->index = index;
  slot->host_offset = host_offset;
  slot->used = true;
  slot->dirty = create_new;
  slot->last_use = ++clock_;
  last_hit_ = slot;
  return slot;
}

base::Result<uint64_t, PlanError> RefcountEditor::Get(uint64_t cluster) {
  const uint64_t per_block = geometry_.refcount_entries;
  Slot* slot;
  TRY(slot, Lookup(cluster / per_block, false, 0));
  if (slot == nullptr) return uint64_t{0};
  return qcow2::GetRefcount(slot->bytes, geometry_.refcount_order, cluster % per_block);
}

base::Status<PlanError> RefcountEditor::Adjust(uint64_t cluster, int delta) {
  const uint64_t per_block = geometry_.refcount_entries;
  Slot* slot;
  TRY(slot, Lookup(cluster / per_block, false, 0));
  if (slot == nullptr) return Fail(PlanError::kCorruptRefcount, cluster);
  const uint64_t index = cluster % per_block;
  const uint64_t old = qcow2::GetRefcount(slot->bytes, geometry_.refcount_order, index);
  if ((delta < 0 && old == 0) || (delta > 0 && old == qcow2::MaxRefcount(geometry_.refcount_order))) {
    return Fail(PlanError::kCorruptRefcount, cluster);
  }
  qcow2::SetRefcount(slot->bytes, geometry_.refcount_order, index,
                     delta < 0 ? old - 1 : old + 1);
  slot->dirty = true;
  return {};
}

base::Status<PlanError> RefcountEditor::AddNewBlock(uint64_t index, uint64_t host_offset) {
  Slot* slot;
  TRY(slot, Lookup(index, true, host_offset));
  (void)slot;
  return {};
}

void RefcountEditor::Forget(uint64_t index) {
  for (uint32_t i = 0; i < slot_count_; ++i) {
    Slot& s = slots_[i];
    if (!s.used || s.index != index) continue;
    s.used = false;
    s.dirty = false;
    if (last_hit_ == &s) last_hit_ = nullptr;
  }
}

void RefcountEditor::ForgetAll() {
  for (uint32_t i = 0; i < slot_count_; ++i) slots_[i].used = false;
  last_hit_ = nullptr;
}

base::Status<PlanError> RefcountEditor::Flush(const StepSink& sink, Phase phase) {
  for (uint32_t i = 0; i < slot_count_; ++i) {
    if (slots_[i].used && slots_[i].dirty) TRY_STATUS(WriteSlot(slots_[i], sink, phase));
  }
  return {};
}

}  // namespace instar::image_write
