#include "crates/check/qemu_allocation.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/check/refcount_compare.h"
#include "crates/check/reference_walk.h"
#include "crates/qcow2/entries.h"
#include "crates/qcow2/geometry.h"

namespace instar::check {
namespace {

using abi::SnapshotUpdateFailure;

// The search looks this far past the file (and the clusters it needs).
constexpr uint64_t kFreeSearchSlack = 1u << 20;
// Each restart follows a block added for a missing table index; qemu's recursion through
// blocks counted in other blocks ends after two levels.
constexpr uint32_t kMaxRestarts = 64;
constexpr uint32_t kMaxDepth = 4;
// qemu's QCOW_MAX_REFTABLE_SIZE, which qcow2_refcount_area compares with the entry count.
constexpr uint64_t kMaxTableEntries = 8u << 20;
constexpr uint64_t kHeaderReftableField = 48;  // refcount_table_offset, then its clusters
// qemu's qcow2_refcount_metadata_size converges in a few rounds.
constexpr uint32_t kMaxMetadataRounds = 64;

// qemu's qcow2_refcount_metadata_size (with its generous increase): refcount blocks needed
// to count `clusters` clusters plus the refcount structures themselves.
bool RefblocksFor(uint64_t clusters, uint64_t cluster_size, uint64_t per_block,
                  uint64_t* blocks_out) {
  const uint64_t per_table_cluster = cluster_size / 8;
  uint64_t table = 0, blocks = 0, n = 0;
  bool generous = true;
  for (uint32_t round = 0; round < kMaxMetadataRounds; ++round) {
    const uint64_t last = n;
    uint64_t counted = 0;
    if (!base::CheckedAdd(clusters, table + blocks, &counted)) return false;
    blocks = base::DivRoundUp(counted, per_block);
    table = base::DivRoundUp(blocks, per_table_cluster);
    if (!base::CheckedAdd(clusters, blocks + table, &n)) return false;
    if (n == last && generous) {
      clusters += base::DivRoundUp(table, 2);
      n = 0;
      generous = false;
      continue;
    }
    if (n == last) {
      *blocks_out = blocks;
      return true;
    }
  }
  return false;
}

}  // namespace

bool FreeClusters(CheckState& s, uint64_t offset, uint64_t bytes, bool discard,
                  uint64_t* next_free) {
  if (bytes == 0) return true;
  const uint64_t last = (offset + bytes - 1) >> s.cluster_bits();
  for (uint64_t c = offset >> s.cluster_bits(); c <= last; ++c) {
    uint64_t refcount = 0;
    if (s.stored.Get(c, &refcount) != StoredRefcounts::Lookup::kOk) return false;
    if (refcount == 0) continue;
    if (!s.stored.Set(c, refcount - 1) || !s.stored.Flush()) return false;
    if (refcount != 1) continue;
    if (discard) DiscardCluster(s, c);
    if (next_free != nullptr && c < *next_free) *next_free = c;
  }
  return true;
}

bool QemuAllocation::PrepareRun(uint64_t count, uint64_t* first) {
  for (uint32_t restart = 0; restart < kMaxRestarts; ++restart) {
    if (!FindRun(count, first)) return false;
    switch (EnsureBlocks(*first, count, false, 0)) {
      case Outcome::kDone: return true;
      case Outcome::kFailed: return false;
      case Outcome::kAgain: break;
    }
  }
  failure_ = SnapshotUpdateFailure::kIoError;
  return false;
}

// qemu's alloc_clusters_noref: the run ends at the first `count` clusters in a row, from the
// free-cluster index on, whose refcount reads 0 (no block counts as 0).
bool QemuAllocation::FindRun(uint64_t count, uint64_t* first) {
  const uint64_t limit = ClustersFor(s_, s_.io->Size()) + count + kFreeSearchSlack;
  uint64_t run = 0;
  while (run < count) {
    uint64_t refcount = 0;
    const uint64_t c = next_free_++;
    if (c >= limit || s_.stored.Get(c, &refcount) != StoredRefcounts::Lookup::kOk) {
      failure_ = SnapshotUpdateFailure::kIoError;
      return false;
    }
    run = refcount == 0 ? run + 1 : 0;
  }
  *first = next_free_ - count;
  return true;
}

// qemu's update_refcount as far as it loads (or adds) the blocks of [first, first+count); with
// `increment`, also the +1 it then makes.
QemuAllocation::Outcome QemuAllocation::EnsureBlocks(uint64_t first, uint64_t count,
                                                      bool increment, uint32_t depth) {
  if (count == 0) return Outcome::kDone;  // an empty table: qemu allocates nothing
  const uint64_t per_block = s_.image.geometry.refcount_entries;
  const uint64_t end = first + count;
  for (uint64_t index = first / per_block; index <= (end - 1) / per_block; ++index) {
    uint64_t entry = 0;
    if (!s_.stored.TableEntry(index, &entry)) return Fail(SnapshotUpdateFailure::kIoError);
    const uint64_t block = entry & qcow2::kRefcountTableOffsetMask;
    if (block != 0 && (block & (s_.cluster_size() - 1)) != 0) {
      return Fail(SnapshotUpdateFailure::kIoError);
    }
    if (block != 0) continue;
    const uint64_t cluster = index * per_block > first ? index * per_block : first;
    const Outcome added = AddBlock(cluster, depth);
    // The new block may lie where the caller meant to allocate: the search starts again from
    // the run's first cluster.
    if (added == Outcome::kAgain && next_free_ > first) next_free_ = first;
    return added;
  }
  if (!increment) return Outcome::kDone;
  for (uint64_t c = first; c < end; ++c) {
    uint64_t refcount = 0;
    if (s_.stored.Get(c, &refcount) != StoredRefcounts::Lookup::kOk ||
        refcount >= s_.refcount_max() || !s_.stored.Set(c, refcount + 1)) {
      return Fail(SnapshotUpdateFailure::kIoError);
    }
  }
  if (!s_.stored.Flush() || !s_.io->Flush()) return Fail(SnapshotUpdateFailure::kIoError);
  return Outcome::kDone;
}

// qemu's alloc_refcount_block for `cluster`, whose table entry is empty (or past the table).
QemuAllocation::Outcome QemuAllocation::AddBlock(uint64_t cluster, uint32_t depth) {
  if (depth >= kMaxDepth) return Fail(SnapshotUpdateFailure::kIoError);
  const uint64_t per_block = s_.image.geometry.refcount_entries;
  const uint64_t index = cluster / per_block;
  uint64_t block = 0;
  if (!FindRun(1, &block)) return Outcome::kFailed;
  if (block == 0) return Fail(SnapshotUpdateFailure::kIoError);  // qemu refuses offset 0
  if (block / per_block != index) {
    // Counted in the block that covers it, which may have to be added first.
    const Outcome counted = EnsureBlocks(block, 1, true, depth + 1);
    if (counted != Outcome::kDone) return counted;
  }
  const uint64_t cs = s_.cluster_size();
  __builtin_memset(s_.chunk, 0, cs);
  if (block / per_block == index) {
    qcow2::SetRefcount(s_.chunk, s_.image.refcount_order(), block % per_block, 1);
  }
  if (!s_.io->Write(block * cs, cs, s_.chunk) || !s_.io->Flush()) {
    return Fail(SnapshotUpdateFailure::kIoError);
  }
  const uint64_t table = s_.image.reftable_offset;
  if (index >= s_.image.reftable_entries) return GrowTable(index, block, cluster);
  uint8_t entry[8];
  base::StoreBe64(entry, block * cs);
  if (!s_.stored.Flush() || !s_.io->Write(table + 8 * index, 8, entry) || !s_.io->Flush()) {
    return Fail(SnapshotUpdateFailure::kIoError);
  }
  s_.stored.Retarget(table, s_.image.reftable_entries);
  return Outcome::kAgain;
}

// qemu's qcow2_refcount_area from the first block boundary past `cluster` and `block`: new
// blocks there count themselves and the new table after them; the table keeps the old entries
// and points entry `index` at `block`.
QemuAllocation::Outcome QemuAllocation::GrowTable(uint64_t index, uint64_t block,
                                                   uint64_t cluster) {
  const uint64_t cs = s_.cluster_size();
  const uint64_t per_block = s_.image.geometry.refcount_entries;
  const uint64_t used = (cluster > block ? cluster : block) + 1;
  const uint64_t area_index = base::DivRoundUp(used, per_block);
  uint64_t area_first = 0, total_blocks = 0, table_entries = 0, area_offset = 0;
  if (!base::CheckedMul(area_index, per_block, &area_first) ||
      !base::CheckedMul(area_first, cs, &area_offset) || area_offset > kBlockLayerMaxLength ||
      !RefblocksFor(area_first, cs, per_block, &total_blocks) ||
      !base::CheckedAlignUp(total_blocks + base::DivRoundUp(total_blocks, 2), cs / 8,
                            &table_entries)) {
    return Fail(SnapshotUpdateFailure::kTooLarge);
  }
  if (table_entries > kMaxTableEntries) return Fail(SnapshotUpdateFailure::kTooLarge);
  if (index >= total_blocks || area_index > total_blocks) {
    return Fail(SnapshotUpdateFailure::kIoError);
  }
  const uint64_t area_blocks = total_blocks - area_index;
  const uint64_t table_first = area_first + area_blocks;
  const uint64_t table_clusters = table_entries * 8 / cs;
  const uint64_t area_end = table_first + table_clusters;  // clusters counted, exclusive
  // The new blocks: each counts the part of the area it covers.
  for (uint64_t i = 0; i < area_blocks; ++i) {
    const uint64_t covered = (area_index + i) * per_block;
    __builtin_memset(s_.chunk, 0, cs);
    for (uint64_t c = covered; c < area_end && c < covered + per_block; ++c) {
      qcow2::SetRefcount(s_.chunk, s_.image.refcount_order(), c - covered, 1);
    }
    if (!s_.io->Write((area_first + i) * cs, cs, s_.chunk)) {
      return Fail(SnapshotUpdateFailure::kIoError);
    }
  }
  if (!s_.io->Flush()) return Fail(SnapshotUpdateFailure::kIoError);
  const uint64_t old_offset = s_.image.reftable_offset;
  const uint64_t old_entries = s_.image.reftable_entries;
  const uint64_t copied = old_entries < table_entries ? old_entries : table_entries;
  if (!s_.stored.Flush() ||
      !WriteTable(table_first * cs, table_entries, copied, index, block, area_index, area_blocks,
                  area_first)) {
    return Fail(SnapshotUpdateFailure::kIoError);
  }
  uint8_t field[12];
  base::StoreBe64(field, table_first * cs);
  base::StoreBe32(field + 8, static_cast<uint32_t>(table_clusters));
  if (!s_.io->Write(kHeaderReftableField, sizeof field, field) || !s_.io->Flush()) {
    return Fail(SnapshotUpdateFailure::kIoError);
  }
  // The table qemu now keeps in memory.
  s_.image.reftable_offset = table_first * cs;
  s_.image.reftable_entries = table_entries;
  s_.original_reftable_offset = table_first * cs;
  s_.original_reftable_entries = table_entries;
  s_.stored.Retarget(table_first * cs, table_entries);
  if (!FreeClusters(s_, old_offset, old_entries * 8, false, &next_free_)) {
    return Fail(SnapshotUpdateFailure::kIoError);
  }
  return Outcome::kAgain;
}

// Streams the grown table a cluster at a time: the old entries, `block` at `index`, the area's
// new blocks at [area_index, area_index + area_blocks), zeros after.
bool QemuAllocation::WriteTable(uint64_t offset, uint64_t entries, uint64_t copied,
                                uint64_t index, uint64_t block, uint64_t area_index,
                                uint64_t area_blocks, uint64_t area_first) {
  const uint64_t cs = s_.cluster_size();
  const uint64_t per_cluster = cs / 8;
  for (uint64_t start = 0; start < entries; start += per_cluster) {
    for (uint64_t i = start; i < start + per_cluster; ++i) {
      uint64_t entry = 0;
      if (i < copied && !s_.stored.TableEntry(i, &entry)) return false;
      if (i == index) entry = block * cs;
      if (i >= area_index && i - area_index < area_blocks) {
        entry = (area_first + (i - area_index)) * cs;
      }
      base::StoreBe64(s_.chunk + 8 * (i - start), entry);
    }
    if (!s_.io->Write(offset + 8 * start, cs, s_.chunk)) return false;
  }
  return s_.io->Flush();
}

}  // namespace instar::check
