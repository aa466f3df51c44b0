#include "crates/image_write/cluster_allocator.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/qcow2/geometry.h"

namespace instar::image_write {
namespace {

// How many times a candidate start may be moved past clusters a hostile image claims are in
// use beyond its end before giving up.
constexpr uint32_t kMaxStartMoves = 64;
// The sizes below depend on each other (blocks cover the table, the table lists the blocks);
// they settle after two or three rounds.
constexpr uint32_t kMaxLayoutRounds = 16;

struct Layout {
  uint64_t blocks = 0;
  uint64_t table_clusters = 0;
  uint64_t table_entries = 0;
};

bool HasBlock(const uint64_t* table, uint64_t entries, uint64_t index) {
  return index < entries && table[index] != 0;
}

base::Result<Layout, PlanError> LayoutFrom(const Qcow2Image& image, const uint64_t* table,
                                           uint64_t start, uint64_t count) {
  const uint64_t cs = image.geometry.cluster_size;
  const uint64_t per_block = image.geometry.refcount_entries;
  const uint64_t old_entries = image.refcount_table_entries;
  Layout layout;
  for (uint32_t round = 0; round < kMaxLayoutRounds; ++round) {
    uint64_t total = 0, last = 0;
    if (!base::CheckedAdd(count, layout.blocks + layout.table_clusters, &total) ||
        !base::CheckedAdd(start, total - 1, &last)) {
      return base::Fail(PlanError::kScratchTooSmall);
    }
    Layout next;
    for (uint64_t r = start / per_block; r <= last / per_block; ++r) {
      if (!HasBlock(table, old_entries, r)) ++next.blocks;
    }
    const uint64_t needed_entries = last / per_block + 1;
    if (needed_entries > old_entries) {
      // Half as much again, so that a long run of allocations (preallocation) moves the
      // table a logarithmic number of times.
      const uint64_t with_room = needed_entries + needed_entries / 2;
      next.table_clusters = base::DivRoundUp(with_room * 8, cs);
      if (next.table_clusters * cs > qcow2::kMaxRefcountTableBytes) {
        next.table_clusters = base::DivRoundUp(needed_entries * 8, cs);
      }
      if (next.table_clusters * cs > qcow2::kMaxRefcountTableBytes) {
        return base::Fail(PlanError::kScratchTooSmall);
      }
      next.table_entries = next.table_clusters * cs / 8;
    }
    if (next.blocks == layout.blocks && next.table_clusters == layout.table_clusters) {
      return next;
    }
    layout = next;
  }
  return base::Fail(PlanError::kScratchTooSmall);
}

bool EmitWrite(const StepSink& sink, Phase phase, uint64_t offset, uint64_t length,
               const uint8_t* bytes) {
  Step step;
  step.kind = StepKind::kWrite;
  step.phase = phase;
  step.offset = offset;
  step.length = length;
  step.bytes = bytes;
  return sink.Emit(step);
}

// Big-endian bytes of table entries [first, last].
uint8_t* EncodeTable(base::Arena& arena, const uint64_t* table, uint64_t first, uint64_t last) {
  uint8_t* out = arena.Allocate(8 * (last - first + 1), 8);
  if (out == nullptr) return nullptr;
  for (uint64_t i = first; i <= last; ++i) base::StoreBe64(out + 8 * (i - first), table[i]);
  return out;
}

}  // namespace

base::Result<bool, PlanError> FindFreeRun(const Qcow2Image& image, const uint64_t* table,
                                          RefcountEditor& editor, uint64_t from, uint64_t count,
                                          uint64_t* cluster) {
  const uint64_t per_block = image.geometry.refcount_entries;
  const uint64_t clusters = image.file_size / image.geometry.cluster_size;
  uint64_t run_start = from, run = 0;
  for (uint64_t c = from; c < clusters && count != 0; ++c) {
    if (!HasBlock(table, image.refcount_table_entries, c / per_block)) {
      c = (c / per_block + 1) * per_block - 1;
      run = 0;
      continue;
    }
    uint64_t refcount;
    TRY(refcount, editor.Get(c));
    if (refcount != 0) {
      run = 0;
      continue;
    }
    if (run == 0) run_start = c;
    if (++run == count) {
      *cluster = run_start;
      return true;
    }
  }
  return false;
}

base::Status<PlanError> EmitAllocation(const Qcow2Image& image, const Allocation& alloc,
                                       RefcountEditor& editor, base::Arena& arena,
                                       const StepSink& sink) {
  const uint64_t cs = image.geometry.cluster_size;
  TRY_STATUS(editor.Flush(sink, Phase::kRefcountIncrement));
  if (alloc.table_clusters != 0) {
    const uint8_t* bytes = EncodeTable(arena, alloc.table, 0, alloc.table_entries - 1);
    if (bytes == nullptr) return base::Fail(PlanError::kScratchTooSmall);
    if (!EmitWrite(sink, Phase::kNewMetadata, alloc.table_first * cs, alloc.table_entries * 8,
                   bytes)) {
      return base::Fail(PlanError::kIoError);
    }
    uint8_t field[12];
    base::StoreBe64(field, alloc.table_first * cs);
    base::StoreBe32(field + 8, static_cast<uint32_t>(alloc.table_clusters));
    if (!EmitWrite(sink, Phase::kHeader, kHeaderRefcountTableOffset, 12, field)) {
      return base::Fail(PlanError::kIoError);
    }
  } else if (alloc.blocks != 0) {
    uint64_t first = alloc.block_indices[0], last = alloc.block_indices[0];
    for (uint64_t i = 1; i < alloc.blocks; ++i) {
      if (alloc.block_indices[i] < first) first = alloc.block_indices[i];
      if (alloc.block_indices[i] > last) last = alloc.block_indices[i];
    }
    const uint8_t* bytes = EncodeTable(arena, alloc.table, first, last);
    if (bytes == nullptr) return base::Fail(PlanError::kScratchTooSmall);
    if (!EmitWrite(sink, Phase::kPointer, image.header.refcount_table_offset + 8 * first,
                   8 * (last - first + 1), bytes)) {
      return base::Fail(PlanError::kIoError);
    }
  }
  return {};
}

base::Status<PlanError> CheckOldTableCounted(const Qcow2Image& image, RefcountEditor& editor) {
  const uint64_t first = image.ClusterOf(image.header.refcount_table_offset);
  for (uint64_t c = first; c < first + image.header.refcount_table_clusters; ++c) {
    uint64_t refcount;
    TRY(refcount, editor.Get(c));
    if (refcount == 0) return base::Fail(PlanError::kCorruptRefcount, c);
  }
  return {};
}

base::Status<PlanError> FreeOldTable(const Qcow2Image& image, RefcountEditor& editor) {
  const uint64_t first = image.ClusterOf(image.header.refcount_table_offset);
  for (uint64_t c = first; c < first + image.header.refcount_table_clusters; ++c) {
    TRY_STATUS(editor.Adjust(c, -1));
  }
  return {};
}

base::Result<Allocation, PlanError> AllocateClusters(const Qcow2Image& image, uint64_t count,
                                                     uint64_t* table, RefcountEditor& editor,
                                                     base::Arena& arena) {
  Allocation a;
  if (count == 0) return a;
  const uint64_t cs = image.geometry.cluster_size;
  const uint64_t per_block = image.geometry.refcount_entries;
  uint64_t start = base::DivRoundUp(image.file_size, cs);
  Layout layout;
  for (uint32_t move = 0;; ++move) {
    if (move == kMaxStartMoves) return base::Fail(PlanError::kCorruptRefcount, start);
    TRY(layout, LayoutFrom(image, table, start, count));
    const uint64_t total = count + layout.blocks + layout.table_clusters;
    // Clusters past the end of the file must not already be counted as in use.
    uint64_t busy = 0;
    bool clear = true;
    for (uint64_t c = start; c < start + total; ++c) {
      uint64_t refcount;
      TRY(refcount, editor.Get(c));
      if (refcount != 0) {
        busy = c;
        clear = false;
      }
    }
    if (clear) break;
    start = busy + 1;
  }

  a.blocks_first = start;
  a.blocks = layout.blocks;
  a.table_first = start + layout.blocks;
  a.table_clusters = layout.table_clusters;
  a.first_cluster = a.table_first + layout.table_clusters;
  a.count = count;

  auto* indices = reinterpret_cast<uint64_t*>(arena.Allocate(8 * (layout.blocks + 1), 8));
  if (indices == nullptr) return base::Fail(PlanError::kScratchTooSmall);
  a.table = table;
  a.table_entries = image.refcount_table_entries;
  if (layout.table_clusters != 0) {
    auto* bigger = reinterpret_cast<uint64_t*>(arena.Allocate(8 * layout.table_entries, 8));
    if (bigger == nullptr) return base::Fail(PlanError::kScratchTooSmall);
    __builtin_memset(bigger, 0, 8 * layout.table_entries);
    __builtin_memcpy(bigger, table, 8 * image.refcount_table_entries);
    a.table = bigger;
    a.table_entries = layout.table_entries;
    editor.SetTable(a.table, a.table_entries);
  }
  const uint64_t end = a.first_cluster + count;
  uint64_t next_block = a.blocks_first;
  for (uint64_t r = start / per_block; r <= (end - 1) / per_block; ++r) {
    if (HasBlock(a.table, a.table_entries, r)) continue;
    indices[next_block - a.blocks_first] = r;
    a.table[r] = next_block * cs;
    TRY_STATUS(editor.AddNewBlock(r, next_block * cs));
    ++next_block;
  }
  a.block_indices = indices;
  for (uint64_t c = start; c < end; ++c) TRY_STATUS(editor.Adjust(c, +1));
  return a;
}

}  // namespace instar::image_write
