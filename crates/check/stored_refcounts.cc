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

StoredRefcounts::Lookup StoredRefcounts::Get(uint64_t cluster, uint64_t* refcount,
                                             uint64_t* block_offset, uint64_t* table_index) {
  const uint64_t per_block = image_->geometry.refcount_entries;
  const uint64_t index = cluster / per_block;
  uint64_t entry = 0;
  if (!TableEntry(index, &entry)) return Lookup::kIoError;
  const uint64_t offset = entry & qcow2::kRefcountTableOffsetMask;
  if (block_offset != nullptr) *block_offset = offset;
  if (table_index != nullptr) *table_index = index;
  if (offset == 0) {
    *refcount = 0;
    return Lookup::kOk;
  }
  if ((offset & (image_->cluster_size() - 1)) != 0) return Lookup::kUnalignedBlock;
  if (!LoadBlock(offset)) return Lookup::kIoError;
  *refcount = qcow2::GetRefcount(block_, image_->refcount_order(), cluster % per_block);
  return Lookup::kOk;
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
