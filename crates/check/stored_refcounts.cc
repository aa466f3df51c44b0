#include "crates/check/stored_refcounts.h"

#include "crates/base/endian.h"
#include "crates/qcow2/entries.h"

namespace instar::check {

bool StoredRefcounts::Init(const ImageAccess& io, const Qcow2Image& image, base::Arena& arena) {
  io_ = &io;
  image_ = &image;
  table_chunk_ = arena.Allocate(image.cluster_size(), 512);
  block_ = arena.Allocate(image.cluster_size(), 512);
  Retarget(image.reftable_offset, image.reftable_entries);
  return table_chunk_ != nullptr && block_ != nullptr;
}

void StoredRefcounts::Retarget(uint64_t reftable_offset, uint64_t reftable_entries) {
  reftable_offset_ = reftable_offset;
  reftable_entries_ = reftable_entries;
  table_chunk_index_ = UINT64_MAX;
  block_offset_ = UINT64_MAX;
  block_dirty_ = false;
  located_index_ = UINT64_MAX;
}

bool StoredRefcounts::TableEntry(uint64_t index, uint64_t* entry) {
  if (index >= reftable_entries_) {
    *entry = 0;
    return true;
  }
  const uint64_t per_chunk = image_->cluster_size() / 8;
  const uint64_t first = index - index % per_chunk;
  if (first != table_chunk_index_) {
    if (!io_->Read(reftable_offset_ + first * 8, image_->cluster_size(), table_chunk_)) {
      table_chunk_index_ = UINT64_MAX;
      return false;
    }
    table_chunk_index_ = first;
  }
  *entry = base::LoadBe64(table_chunk_ + (index - first) * 8);
  return true;
}

bool StoredRefcounts::LoadBlock(uint64_t offset) {
  if (offset == block_offset_) return true;
  if (!Flush()) return false;
  if (!io_->Read(offset, image_->cluster_size(), block_)) {
    block_offset_ = UINT64_MAX;
    return false;
  }
  block_offset_ = offset;
  return true;
}

// The block holding `cluster` loaded into the cache (`*offset` 0: no block, nothing loaded).
StoredRefcounts::Lookup StoredRefcounts::Locate(uint64_t cluster, uint64_t* offset,
                                                uint64_t* table_index) {
  *table_index = cluster / image_->geometry.refcount_entries;
  // Walks ask about neighbouring clusters: the block found last is usually the one wanted.
  if (*table_index == located_index_ && (located_offset_ == 0 || located_offset_ == block_offset_)) {
    *offset = located_offset_;
    return Lookup::kOk;
  }
  uint64_t entry = 0;
  if (!TableEntry(*table_index, &entry)) return Lookup::kIoError;
  *offset = entry & qcow2::kRefcountTableOffsetMask;
  if ((*offset & (image_->cluster_size() - 1)) != 0) return Lookup::kUnalignedBlock;
  if (*offset != 0 && !LoadBlock(*offset)) return Lookup::kIoError;
  located_index_ = *table_index;
  located_offset_ = *offset;
  return Lookup::kOk;
}

StoredRefcounts::Lookup StoredRefcounts::Block(uint64_t cluster, const uint8_t** bytes) {
  uint64_t offset = 0, index = 0;
  const Lookup found = Locate(cluster, &offset, &index);
  *bytes = found == Lookup::kOk && offset != 0 ? block_ : nullptr;
  return found;
}

StoredRefcounts::Lookup StoredRefcounts::Get(uint64_t cluster, uint64_t* refcount,
                                             uint64_t* block_offset, uint64_t* table_index) {
  uint64_t offset = 0, index = 0;
  const Lookup found = Locate(cluster, &offset, &index);
  if (block_offset != nullptr) *block_offset = offset;
  if (table_index != nullptr) *table_index = index;
  if (found == Lookup::kOk) {
    *refcount = offset == 0 ? 0
                            : qcow2::GetRefcount(block_, image_->refcount_order(),
                                                 cluster % image_->geometry.refcount_entries);
  }
  return found;
}

bool StoredRefcounts::Set(uint64_t cluster, uint64_t refcount) {
  uint64_t current = 0, offset = 0;
  if (Get(cluster, &current, &offset) != Lookup::kOk || offset == 0) return false;
  qcow2::SetRefcount(block_, image_->refcount_order(),
                     cluster % image_->geometry.refcount_entries, refcount);
  block_dirty_ = true;
  return true;
}

bool StoredRefcounts::Flush() {
  if (!block_dirty_) return true;
  block_dirty_ = false;
  return io_->Write(block_offset_, image_->cluster_size(), block_);
}

}  // namespace instar::check
