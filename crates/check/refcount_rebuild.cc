#include "crates/check/refcount_rebuild.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/check/corruption_event.h"
#include "crates/check/metadata_overlap.h"

namespace instar::check {
namespace {

class Rebuild {
 public:
  Rebuild(CheckState& s, uint64_t* table, uint64_t table_capacity)
      : s_(s), table_(table), table_capacity_(table_capacity) {}

  bool Run();

 private:
  // qemu's alloc_clusters_imrt: the first run of `count` free clusters at or after
  // *first_free (growing the count past its end when needed), marked used.
  bool Allocate(uint64_t count, uint64_t* first_free, uint64_t* cluster);
  // Writes a refcount block for every block of [first, end) with a non-zero count; returns
  // false on failure, sets *grown when the table had to grow.
  bool WriteRefblocks(uint64_t first, uint64_t end, bool* grown);
  // qemu's overlap check before a write; refuses (and reports, as qemu does) a write over
  // live metadata. `what`: 0 a refcount block, 1 the refcount table.
  bool Guarded(uint64_t offset, uint64_t size, uint64_t what);

  CheckState& s_;
  uint64_t* table_;           // host-endian while building
  uint64_t table_capacity_;   // entries
  uint64_t table_entries_ = 0;
};

bool Rebuild::Allocate(uint64_t count, uint64_t* first_free, uint64_t* cluster) {
  uint64_t c = *first_free;
  uint64_t contiguous = 0;
  bool first_gap = true;
  for (; c < s_.domain_end && contiguous < count; ++c) {
    if (s_.window.Get(c) == 0) {
      ++contiguous;
      if (first_gap) {
        *first_free = c;
        first_gap = false;
      }
    } else {
      contiguous = 0;
    }
  }
  if (contiguous < count) s_.domain_end = c + count - contiguous;
  if (s_.domain_end > s_.window.end()) return false;
  c -= contiguous;
  for (uint64_t i = 0; i < count; ++i) s_.window.Set(c + i, 1);
  *cluster = c;
  return true;
}

bool Rebuild::WriteRefblocks(uint64_t first, uint64_t end, bool* grown) {
  const uint64_t per_block = s_.image.geometry.refcount_entries;
  const uint64_t cs = s_.cluster_size();
  uint64_t first_free = 0;
  for (uint64_t cluster = first; cluster < end; ++cluster) {
    if (s_.window.Get(cluster) == 0) continue;
    const uint64_t index = cluster / per_block;
    const uint64_t block_start = index * per_block;
    uint64_t block = 0;
    if (index < table_entries_ && table_[index] != 0) {
      block = table_[index];
    } else {
      if (first_free < block_start) first_free = block_start;
      uint64_t block_cluster = 0;
      if (!Allocate(1, &first_free, &block_cluster)) return false;
      block = block_cluster << s_.cluster_bits();
      if (block_cluster >= end) end = block_cluster + 1;
      if (table_entries_ <= index) {
        const uint64_t per_cluster = cs / 8;
        const uint64_t entries = (index + 1 + per_cluster - 1) / per_cluster * per_cluster;
        if (entries > table_capacity_) return false;
        for (uint64_t e = table_entries_; e < entries; ++e) table_[e] = 0;
        table_entries_ = entries;
        *grown = true;
      }
      table_[index] = block;
    }
    if (!Guarded(block, cs, /*what=*/0)) return false;
    if (!s_.io->Write(block, cs, s_.window.bytes() + index * cs)) return false;
    cluster = block_start + per_block - 1;
  }
  return true;
}

bool Rebuild::Guarded(uint64_t offset, uint64_t size, uint64_t what) {
  abi::MetadataKind kind;
  if (!OverlapsMetadata(s_, offset, size, &kind)) return true;
  SignalCorruption(s_, abi::FindingKind::kOverlapCorruptEvent, static_cast<uint64_t>(kind), 0);
  s_.sink->Emit(abi::FindingKind::kRebuildWriteFailed, what);
  return false;
}

bool Rebuild::Run() {
  bool grown = false;
  if (!WriteRefblocks(0, s_.domain_end, &grown)) return false;
  const uint64_t cs = s_.cluster_size();
  uint64_t table_offset = 0, table_clusters = 0;
  // Placing the table changes the counts of the blocks covering it, which may need a new
  // block and a larger table: repeat until nothing grows (each round grows the table, which
  // is bounded by the window).
  do {
    grown = false;
    table_clusters = (table_entries_ * 8 + cs - 1) / cs;
    uint64_t first_free = 0, cluster = 0;
    if (!Allocate(table_clusters, &first_free, &cluster)) return false;
    table_offset = cluster << s_.cluster_bits();
    if (!WriteRefblocks(cluster, cluster + table_clusters, &grown)) return false;
  } while (grown);
  if (!Guarded(table_offset, table_entries_ * 8, /*what=*/1)) return false;
  for (uint64_t i = 0; i < table_entries_; ++i) {
    base::StoreBe64(reinterpret_cast<uint8_t*>(&table_[i]), table_[i]);
  }
  // The new blocks and table must be durable before the header points to them.
  if (!s_.io->Write(table_offset, table_entries_ * 8, reinterpret_cast<uint8_t*>(table_)) ||
      !s_.io->Flush()) {
    return false;
  }
  uint8_t header_fields[12];
  base::StoreBe64(header_fields, table_offset);
  base::StoreBe32(header_fields + 8, static_cast<uint32_t>(table_clusters));
  if (!s_.io->Write(48, sizeof header_fields, header_fields)) return false;
  s_.image.reftable_offset = table_offset;
  s_.image.reftable_entries = table_entries_;
  s_.stored.Retarget(table_offset, table_entries_);
  s_.original_reftable_offset = table_offset;
  s_.original_reftable_entries = table_entries_;
  return true;
}

}  // namespace

bool RebuildRefcountStructure(CheckState& s, base::Arena& arena) {
  const uint64_t per_block = s.image.geometry.refcount_entries;
  const uint64_t per_cluster = s.cluster_size() / 8;
  const uint64_t blocks = base::DivRoundUp(s.window.capacity(), per_block);
  const uint64_t capacity = base::DivRoundUp(blocks, per_cluster) * per_cluster;
  auto* table = reinterpret_cast<uint64_t*>(arena.Allocate(capacity * 8, 512));
  if (table == nullptr) return false;
  return Rebuild(s, table, capacity).Run();
}

}  // namespace instar::check
