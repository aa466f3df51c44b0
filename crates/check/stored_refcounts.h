// StoredRefcounts: the reference counts the image itself records (refcount table -> refcount
// blocks), read on demand through one cached reftable cluster and one cached refcount block,
// and updated in place for repairs (a changed block is written back when the cache moves on,
// or on Flush). Semantics of a lookup follow qemu: a cluster past the table or under an empty
// entry has refcount 0; an unaligned refcount block cannot be read. Freestanding; the two
// cluster buffers come from the caller's arena.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/check/image_access.h"
#include "crates/check/qcow2_image.h"

namespace instar::check {

class StoredRefcounts {
 public:
  enum class Lookup { kOk, kUnalignedBlock, kIoError };

  // False when the arena cannot hold the two cluster buffers.
  bool Init(const ImageAccess& io, const Qcow2Image& image, base::Arena& arena);
  // Point at a new refcount table (after a rebuild); drops the caches.
  void Retarget(uint64_t reftable_offset, uint64_t reftable_entries);

  Lookup Get(uint64_t cluster, uint64_t* refcount, uint64_t* block_offset = nullptr,
             uint64_t* table_index = nullptr);
  // The refcount block holding `cluster`: its cached bytes, or nullptr when the table has no
  // block there (every refcount 0). Valid until the next call that moves the cache.
  Lookup Block(uint64_t cluster, const uint8_t** bytes);
  // Sets the refcount of a cluster whose refcount block exists (Get returned kOk with a
  // non-zero refcount, or the block is otherwise known to be allocated).
  bool Set(uint64_t cluster, uint64_t refcount);
  bool Flush();
  // Raw reftable entry `index` (0 past the table); false on I/O error.
  bool TableEntry(uint64_t index, uint64_t* entry);

 private:
  Lookup Locate(uint64_t cluster, uint64_t* offset, uint64_t* table_index);
  bool LoadBlock(uint64_t offset);

  const ImageAccess* io_ = nullptr;
  const Qcow2Image* image_ = nullptr;
  uint64_t reftable_offset_ = 0;
  uint64_t reftable_entries_ = 0;
  uint8_t* table_chunk_ = nullptr;
  uint64_t table_chunk_index_ = UINT64_MAX;  // first entry held
  uint8_t* block_ = nullptr;
  uint64_t block_offset_ = UINT64_MAX;
  bool block_dirty_ = false;
  uint64_t located_index_ = UINT64_MAX;  // the table entry Locate found last, and its offset
  uint64_t located_offset_ = 0;
};

}  // namespace instar::check
