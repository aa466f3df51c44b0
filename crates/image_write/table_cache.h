// TableCache: a bounded set of fixed-size metadata tables (qcow2 L2 tables, VMDK grain tables)
// held in memory by a writer, keyed by their index in the directory above them (L1 index,
// grain-directory index). The writer decides what a table is and when it is written; the cache
// only finds, hands out and recycles slots (least recently used first, clean slots only).
// Slot buffers are carved from the arena at construction. Freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"

namespace instar::image_write {

struct TableSlot {
  uint64_t index = 0;         // position in the directory
  uint64_t host_offset = 0;   // where the table lives (or will live) in the file
  uint64_t mirror_offset = 0; // a second copy kept in step (VMDK redundant grain table), or 0
  uint8_t* bytes = nullptr;   // table_bytes long
  uint64_t last_use = 0;
  bool used = false;
  bool dirty = false;         // changed since read or last written
  bool fresh = false;         // never written: nothing on disk points to it yet
  bool shared = false;        // qcow2: also referenced by a snapshot (copy before changing)
};

class TableCache {
 public:
  // Up to `slots` tables of `table_bytes` each (fewer when the arena runs out).
  TableCache(uint64_t table_bytes, uint32_t slots, base::Arena& arena);

  uint32_t capacity() const { return count_; }
  uint64_t table_bytes() const { return table_bytes_; }

  // The cached table for `index`, or null.
  TableSlot* Find(uint64_t index);
  // A slot to load a table into: an unused one, else the least recently used clean one
  // (forgotten); null when every slot is dirty (the writer flushes and asks again).
  TableSlot* Take(uint64_t index);
  // Calls `fn(slot)` on every dirty slot, in slot order; stops at the first false.
  template <class Fn>
  bool ForEachDirty(Fn&& fn) {
    for (uint32_t i = 0; i < count_; ++i) {
      if (slots_[i].used && slots_[i].dirty && !fn(slots_[i])) return false;
    }
    return true;
  }
  // Drops every slot (all must be clean).
  void Clear();

 private:
  uint64_t table_bytes_;
  TableSlot* slots_ = nullptr;
  uint32_t count_ = 0;
  uint64_t clock_ = 0;
  TableSlot* last_hit_ = nullptr;
};

}  // namespace instar::image_write
