#include "crates/check/refcount_rebuild.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/check/corruption_event.h"
#include "crates/check/metadata_overlap.h"
#include "crates/check/reference_walk.h"
#include "crates/qcow2/entries.h"

namespace instar::check {
namespace {

// The table's placement repeats only while the table grows, by at least one cluster of
// entries each time.
constexpr uint64_t kMaxTablePlacements = 64;

struct Range {
  uint64_t first = 0;
  uint64_t count = 0;
};

class Rebuild {
 public:
  Rebuild(CheckState& s, uint64_t* table, uint64_t* queue, uint64_t capacity)
      : s_(s), table_(table), queue_(queue), capacity_(capacity),
        per_block_(s.image.geometry.refcount_entries), walk_end_(s.domain_end),
        end_(s.domain_end), loaded_(s.window.base()) {}

  RebuildOutcome Run();

 private:
  uint64_t WindowOf(uint64_t cluster) const {
    return cluster / s_.window.capacity() * s_.window.capacity();
  }
  // Puts the count of the window holding `base` in memory: the references (a silent walk,
  // for clusters the walk can reach) and every cluster the rebuild has taken.
  bool Load(uint64_t base);
  // qemu's alloc_clusters_imrt for one cluster: the first free cluster at or after `from`.
  bool FirstFree(uint64_t from, uint64_t* cluster);
  // The same for `count` clusters in a row, searched from the start.
  bool FreeRun(uint64_t count, uint64_t* first);
  void Take(uint64_t cluster);
  // Block `index` goes to `cluster`; grows the table as qemu does (to whole clusters).
  bool Place(uint64_t index, uint64_t cluster);
  // qemu's first rebuild_refcounts_write_refblocks over the whole count.
  bool PlaceBlocks();
  // The later ones, over the clusters the table took; *grown when the table grew.
  bool PlaceBlocksFor(uint64_t first, uint64_t end, bool* grown);
  bool WriteBlocks();
  bool WriteTableAndHeader(uint64_t table_offset, uint64_t table_clusters);
  bool Guarded(uint64_t offset, uint64_t size, uint64_t what);

  CheckState& s_;
  uint64_t* table_;  // host-endian while building
  uint64_t* queue_;  // blocks waiting for a cluster past the window in memory (a ring)
  uint64_t capacity_;
  uint64_t per_block_;
  uint64_t walk_end_;  // clusters from here on have no references
  uint64_t end_;       // qemu's nb_clusters: grows with what is taken past it
  uint64_t loaded_;    // base of the window in memory
  uint64_t table_entries_ = 0;
  uint64_t queue_head_ = 0;
  uint64_t queued_ = 0;
  Range ranges_[kMaxTablePlacements];
  uint64_t range_count_ = 0;
  bool no_room_ = false;
};

bool Rebuild::Load(uint64_t base) {
  base = WindowOf(base);
  if (base == loaded_) return true;
  s_.window = s_.window.At(base);
  s_.window.Clear();
  loaded_ = base;
  if (base < walk_end_) {
    const CheckCounts counts = s_.counts;
    const bool rebuild = s_.rebuild;
    const uint64_t order = s_.sink->order;
    CalculateRefcounts(s_, WalkMode::kSilent, 0);
    s_.counts = counts;
    s_.rebuild = rebuild;
    s_.sink->order = order;
    if (s_.failure != abi::CheckFailure::kNone || s_.io_failed) return false;
  }
  for (uint64_t i = 0; i < table_entries_; ++i) {
    const uint64_t c = table_[i] >> s_.cluster_bits();
    if (table_[i] != 0 && s_.window.Contains(c)) s_.window.Set(c, 1);
  }
  for (uint64_t r = 0; r < range_count_; ++r) {
    for (uint64_t c = ranges_[r].first; c < ranges_[r].first + ranges_[r].count; ++c) {
      if (s_.window.Contains(c)) s_.window.Set(c, 1);
    }
  }
  return true;
}

void Rebuild::Take(uint64_t cluster) {
  if (cluster + 1 > end_) end_ = cluster + 1;
  if (s_.window.Contains(cluster)) s_.window.Set(cluster, 1);
}

bool Rebuild::FirstFree(uint64_t from, uint64_t* cluster) {
  uint64_t c = from;
  while (c < end_) {
    if (!Load(c)) return false;
    const uint64_t stop = s_.window.end() < end_ ? s_.window.end() : end_;
    for (; c < stop; ++c) {
      if (s_.window.Get(c) == 0) {
        *cluster = c;
        return true;
      }
    }
  }
  *cluster = c;  // past the count everything is free
  return true;
}

bool Rebuild::FreeRun(uint64_t count, uint64_t* first) {
  uint64_t c = 0, run = 0;
  while (c < end_ && run < count) {
    if (!Load(c)) return false;
    const uint64_t stop = s_.window.end() < end_ ? s_.window.end() : end_;
    for (; c < stop && run < count; ++c) run = s_.window.Get(c) == 0 ? run + 1 : 0;
  }
  *first = c - run;
  if (range_count_ == kMaxTablePlacements) {
    no_room_ = true;
    return false;
  }
  ranges_[range_count_++] = {*first, count};
  for (uint64_t i = 0; i < count; ++i) Take(*first + i);
  return true;
}

bool Rebuild::Place(uint64_t index, uint64_t cluster) {
  if (table_entries_ <= index) {
    const uint64_t per_cluster = s_.cluster_size() / 8;
    const uint64_t entries = (index / per_cluster + 1) * per_cluster;
    if (entries > capacity_) {
      no_room_ = true;
      return false;
    }
    for (uint64_t e = table_entries_; e < entries; ++e) table_[e] = 0;
    table_entries_ = entries;
  }
  table_[index] = cluster << s_.cluster_bits();
  Take(cluster);
  return true;
}

// Window by window: a block whose first free cluster lies past the window in memory waits in
// the queue until the windows after it are counted; until the queue is empty, every later
// block of the window waits too (qemu's search for it would start past this window).
bool Rebuild::PlaceBlocks() {
  uint64_t first_free = 0;
  uint64_t next = 0;  // the first cluster whose block is not yet placed or skipped
  for (uint64_t base = 0; base < end_ || queued_ != 0; base += s_.window.capacity()) {
    if (!Load(base)) return false;
    const uint64_t window_end = s_.window.end();
    uint64_t c = first_free > base ? first_free : base;
    while (queued_ != 0) {
      while (c < window_end && s_.window.Get(c) != 0) ++c;
      if (c == window_end) break;
      if (!Place(queue_[queue_head_], c)) return false;
      queue_head_ = (queue_head_ + 1) % capacity_;
      --queued_;
      first_free = c;
    }
    if (queued_ != 0) first_free = window_end;
    for (uint64_t k = next > base ? next : base; k < window_end && k < end_; ++k) {
      if (s_.window.Get(k) == 0) continue;
      const uint64_t index = k / per_block_;
      const uint64_t block_start = index * per_block_;
      const uint64_t counted = k;
      next = block_start + per_block_;
      k = next - 1;
      if (index < table_entries_ && table_[index] != 0) continue;
      if (first_free < block_start) first_free = block_start;
      // Clusters of the block before `counted` are free (its first counted one), wherever
      // their window; from `k` on the search stays in this window.
      uint64_t at = first_free;
      if (queued_ == 0 && at >= counted) {
        while (at < window_end && s_.window.Get(at) != 0) ++at;
      }
      if (queued_ == 0 && at < window_end) {
        if (!Place(index, at)) return false;
        first_free = at;
      } else {
        if (queued_ == capacity_) {
          no_room_ = true;
          return false;
        }
        queue_[(queue_head_ + queued_) % capacity_] = index;
        ++queued_;
        first_free = window_end;
      }
    }
  }
  return true;
}

bool Rebuild::PlaceBlocksFor(uint64_t first, uint64_t end, bool* grown) {
  uint64_t first_free = 0;
  for (uint64_t k = first; k < end; ++k) {
    if (!Load(k)) return false;
    if (s_.window.Get(k) == 0) continue;
    const uint64_t index = k / per_block_;
    const uint64_t block_start = index * per_block_;
    if (index >= table_entries_ || table_[index] == 0) {
      if (first_free < block_start) first_free = block_start;
      uint64_t cluster = 0;
      if (!FirstFree(first_free, &cluster)) return false;
      first_free = cluster;
      if (index >= table_entries_) *grown = true;
      if (!Place(index, cluster)) return false;
      if (cluster >= end) end = cluster + 1;
    }
    k = block_start + per_block_ - 1;
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

// Each block holds the final count of its clusters (qemu writes some twice on the way there),
// written in slices as the windows come. Past the walk's reach a block holds only clusters the
// rebuild took: that part is written at once, from a cluster buffer.
bool Rebuild::WriteBlocks() {
  const uint32_t bits = 1u << s_.image.refcount_order();
  const uint64_t cap = s_.window.capacity();
  const uint64_t counted_end = base::DivRoundUp(walk_end_, cap) * cap;
  for (uint64_t index = 0; index < table_entries_; ++index) {
    if (table_[index] == 0) continue;
    const uint64_t block_start = index * per_block_;
    const uint64_t block_end = block_start + per_block_;
    if (!Guarded(table_[index], s_.cluster_size(), /*what=*/0)) return false;
    uint64_t lo = block_start;
    for (; lo < block_end && lo < counted_end; lo = s_.window.end()) {
      if (!Load(lo)) return false;
      const uint64_t hi = block_end < s_.window.end() ? block_end : s_.window.end();
      if (!s_.io->Write(table_[index] + (lo - block_start) * bits / 8, (hi - lo) * bits / 8,
                        s_.window.bytes() + (lo - s_.window.base()) * bits / 8)) {
        return false;
      }
    }
    if (lo >= block_end) continue;
    uint8_t* tail = s_.l2;
    s_.l2_buffered = UINT64_MAX;
    __builtin_memset(tail, 0, s_.cluster_size());
    const auto mark = [&](uint64_t c) {
      if (c >= lo && c < block_end) {
        qcow2::SetRefcount(tail, s_.image.refcount_order(), c - block_start, 1);
      }
    };
    for (uint64_t i = 0; i < table_entries_; ++i) {
      if (table_[i] != 0) mark(table_[i] >> s_.cluster_bits());
    }
    for (uint64_t r = 0; r < range_count_; ++r) {
      for (uint64_t c = ranges_[r].first; c < ranges_[r].first + ranges_[r].count; ++c) mark(c);
    }
    if (!s_.io->Write(table_[index] + (lo - block_start) * bits / 8, (block_end - lo) * bits / 8,
                      tail + (lo - block_start) * bits / 8)) {
      return false;
    }
  }
  return true;
}

bool Rebuild::WriteTableAndHeader(uint64_t table_offset, uint64_t table_clusters) {
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

RebuildOutcome Rebuild::Run() {
  const auto failed = [this] {
    return no_room_ ? RebuildOutcome::kNoRoom : RebuildOutcome::kFailed;
  };
  if (!PlaceBlocks()) return failed();
  const uint64_t cs = s_.cluster_size();
  uint64_t table_first = 0, table_clusters = 0;
  // Taking clusters for the table changes the counts of the blocks covering it, which may
  // need a new block and a larger table: repeat until nothing grows.
  bool grown = false;
  do {
    grown = false;
    table_clusters = base::DivRoundUp(table_entries_ * 8, cs);
    if (!FreeRun(table_clusters, &table_first)) return failed();
    if (!PlaceBlocksFor(table_first, table_first + table_clusters, &grown)) return failed();
  } while (grown);
  if (!WriteBlocks()) return RebuildOutcome::kFailed;
  s_.domain_end = end_;
  return WriteTableAndHeader(table_first << s_.cluster_bits(), table_clusters)
             ? RebuildOutcome::kRebuilt
             : RebuildOutcome::kFailed;
}

}  // namespace

RebuildOutcome RebuildRefcountStructure(CheckState& s, base::Arena& arena,
                                        uint64_t table_entries) {
  auto* table = reinterpret_cast<uint64_t*>(arena.Allocate(table_entries * 8, 512));
  auto* queue = reinterpret_cast<uint64_t*>(arena.Allocate(table_entries * 8, 8));
  if (table == nullptr || queue == nullptr || table_entries == 0) return RebuildOutcome::kNoRoom;
  return Rebuild(s, table, queue, table_entries).Run();
}

}  // namespace instar::check
