#include "crates/image_write/table_cache.h"

namespace instar::image_write {

TableCache::TableCache(uint64_t table_bytes, uint32_t slots, base::Arena& arena)
    : table_bytes_(table_bytes) {
  auto* raw = arena.Allocate(uint64_t{sizeof(TableSlot)} * slots, alignof(TableSlot));
  if (raw == nullptr) return;
  slots_ = reinterpret_cast<TableSlot*>(raw);
  for (uint32_t i = 0; i < slots; ++i) {
    new (&slots_[i]) TableSlot();
    slots_[i].bytes = arena.Allocate(table_bytes, 512);
    if (slots_[i].bytes == nullptr) break;
    count_ = i + 1;
  }
}

TableSlot* TableCache::Find(uint64_t index) {
  if (last_hit_ != nullptr && last_hit_->used && last_hit_->index == index) {
    last_hit_->last_use = ++clock_;
    return last_hit_;
  }
  for (uint32_t i = 0; i < count_; ++i) {
    if (slots_[i].used && slots_[i].index == index) {
      slots_[i].last_use = ++clock_;
      last_hit_ = &slots_[i];
      return last_hit_;
    }
  }
  return nullptr;
}

TableSlot* TableCache::Take(uint64_t index) {
  TableSlot* victim = nullptr;
  for (uint32_t i = 0; i < count_; ++i) {
    TableSlot& s = slots_[i];
    if (!s.used) {
      victim = &s;
      break;
    }
    if (!s.dirty && (victim == nullptr || s.last_use < victim->last_use)) victim = &s;
  }
  if (victim == nullptr) return nullptr;
  uint8_t* bytes = victim->bytes;
  *victim = TableSlot();
  victim->bytes = bytes;
  victim->index = index;
  victim->used = true;
  victim->last_use = ++clock_;
  last_hit_ = victim;
  return victim;
}

void TableCache::Clear() {
  for (uint32_t i = 0; i < count_; ++i) slots_[i].used = false;
  last_hit_ = nullptr;
}

}  // namespace instar::image_write
