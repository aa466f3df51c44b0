#include "crates/resize/qcow2_shrink.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/qcow2/entries.h"
#include "crates/image_write/cluster_allocator.h"
#include "crates/image_write/refcount_editor.h"

namespace instar::resize {

using image_write::AllocateClusters;
using image_write::Allocation;
using image_write::CacheBlocksFor;
using image_write::CheckOldTableCounted;
using image_write::Emit;
using image_write::EmitAllocation;
using image_write::FindFreeRun;
using image_write::FreeOldTable;
using image_write::Phase;
using image_write::RefcountEditor;
using image_write::StepKind;
using image_write::kHeaderSizeOffset;

namespace {

using base::Fail;

// L1 entries read per batch of whole tables to drop.
constexpr uint64_t kL1Batch = 4096;

class Shrinker {
 public:
  Shrinker(const Qcow2Image& image, const ImageReader& reader, base::Arena& arena,
           const StepSink& sink, uint64_t* table)
      : image_(image), reader_(reader), sink_(sink), arena_(arena), table_(table),
        table_offset_(image.header.refcount_table_offset),
        table_entries_(image.refcount_table_entries),
        editor_(reader, image.geometry, table, image.refcount_table_entries, arena,
                CacheBlocksFor(image.geometry, arena)) {
    l2_ = arena.Allocate(image.geometry.cluster_size, 512);
    l1_ = arena.Allocate(kL1Batch * 8, 512);
    // Pointers are always dropped before the decrements they allow; a full cache may write
    // decrements out early.
    editor_.AllowEvictionWrites(&sink_, Phase::kRefcountDecrement);
  }

  base::Result<ShrinkSummary, PlanError> Run(uint64_t new_size);

 private:
  base::Status<PlanError> ReadL2(uint64_t l1_raw, uint64_t* l2_offset);
  base::Status<PlanError> CheckedCluster(uint64_t offset, PlanError error);
  base::Status<PlanError> DereferenceEntries(uint64_t l2_offset, uint64_t first, uint64_t end,
                                             uint64_t* dropped);
  base::Status<PlanError> CutPartialTable(uint64_t l1_index, uint64_t first_entry);
  base::Status<PlanError> CutSharedTable(uint64_t l1_entry_offset, uint64_t l2_offset,
                                         uint64_t first_entry);
  base::Status<PlanError> DropWholeTables(uint64_t first_index);
  base::Status<PlanError> DropEmptyBlocks();
  base::Result<uint64_t, PlanError> LastUsedCluster();

  const Qcow2Image& image_;
  const ImageReader& reader_;
  const StepSink& sink_;
  base::Arena& arena_;
  uint64_t* table_;  // the editor's copy of the refcount table
  uint64_t table_offset_;  // where the table is (it moves when a copied L2 table needs room)
  uint64_t table_entries_;
  RefcountEditor editor_;
  uint8_t* l2_ = nullptr;
  uint8_t* l1_ = nullptr;
  ShrinkSummary summary_;
};

base::Status<PlanError> Shrinker::CheckedCluster(uint64_t offset, PlanError error) {
  uint64_t end = 0;
  if ((offset & (image_.geometry.cluster_size - 1)) != 0 ||
      !base::CheckedAdd(offset, image_.geometry.cluster_size, &end) || end > image_.file_size) {
    return Fail(error, offset);
  }
  return {};
}

// Validates the L1 entry and reads its L2 table into l2_; *l2_offset is 0 for none.
base::Status<PlanError> Shrinker::ReadL2(uint64_t l1_raw, uint64_t* l2_offset) {
  const qcow2::L1Entry e = qcow2::DecodeL1(l1_raw);
  *l2_offset = e.l2_offset;
  if (e.l2_offset == 0) return {};
  TRY_STATUS(CheckedCluster(e.l2_offset, PlanError::kCorruptL1));
  if (!reader_.Read(e.l2_offset, image_.geometry.cluster_size, l2_)) {
    return Fail(PlanError::kIoError, e.l2_offset);
  }
  return {};
}

// Decrements the refcount of every host cluster entries [first, end) of the table in l2_
// point to; *dropped counts the entries that were not empty.
base::Status<PlanError> Shrinker::DereferenceEntries(uint64_t l2_offset, uint64_t first,
                                                     uint64_t end, uint64_t* dropped) {
  const qcow2::Geometry& g = image_.geometry;
  const uint64_t cs = g.cluster_size;
  for (uint64_t i = first; i < end; ++i) {
    const uint8_t* p = l2_ + i * g.l2_entry_bytes;
    const uint64_t raw = base::LoadBe64(p);
    const uint64_t bitmap = g.extended_l2 ? base::LoadBe64(p + 8) : 0;
    if (raw == 0 && bitmap == 0) continue;
    ++*dropped;
    const qcow2::L2Entry e = qcow2::DecodeL2(g, raw, bitmap);
    switch (e.kind) {
      case qcow2::ClusterKind::kUnallocated:
      case qcow2::ClusterKind::kZeroPlain:
        break;
      case qcow2::ClusterKind::kNormal:
      case qcow2::ClusterKind::kZeroAllocated:
        TRY_STATUS(CheckedCluster(e.host_offset, PlanError::kCorruptL2));
        TRY_STATUS(editor_.Adjust(e.host_offset / cs, -1));
        break;
      case qcow2::ClusterKind::kCompressed: {
        // The compressed bytes start at a sector boundary and may span two host clusters.
        const uint64_t start = e.host_offset & ~uint64_t{511};
        if (start >= image_.file_size) return Fail(PlanError::kCorruptL2, l2_offset);
        const uint64_t last = (start + e.compressed_bytes - 1) / cs;
        for (uint64_t c = start / cs; c <= last; ++c) TRY_STATUS(editor_.Adjust(c, -1));
        break;
      }
    }
  }
  return {};
}

base::Status<PlanError> Shrinker::CutPartialTable(uint64_t l1_index, uint64_t first_entry) {
  const qcow2::Geometry& g = image_.geometry;
  uint8_t raw[8];
  const uint64_t l1_entry_offset = image_.header.l1_table_offset + 8 * l1_index;
  if (!reader_.Read(l1_entry_offset, 8, raw)) return Fail(PlanError::kIoError);
  uint64_t l2_offset = 0;
  TRY_STATUS(ReadL2(base::LoadBe64(raw), &l2_offset));
  if (l2_offset == 0) return {};
  uint64_t l2_refcount;
  TRY(l2_refcount, editor_.Get(l2_offset / g.cluster_size));
  if (l2_refcount == 0) return Fail(PlanError::kCorruptRefcount, l2_offset / g.cluster_size);
  bool any = false;
  for (uint64_t i = first_entry * g.l2_entry_bytes; i < g.cluster_size; ++i) {
    if (l2_[i] != 0) {
      any = true;
      break;
    }
  }
  if (!any) return {};
  if (l2_refcount != 1) return CutSharedTable(l1_entry_offset, l2_offset, first_entry);
  const uint64_t from = first_entry * g.l2_entry_bytes;
  if (!Emit(sink_, StepKind::kZero, Phase::kPointerDrop, l2_offset + from,
            g.cluster_size - from)) {
    return Fail(PlanError::kIoError);
  }
  return DereferenceEntries(l2_offset, first_entry, g.l2_entries, &summary_.entries_dropped);
}

// A snapshot shares the table: the active L1 gets a copy without the entries past the end (a
// new cluster, counted before the L1 points to it); then the shared table and the clusters the
// dropped entries pointed to lose the active image's reference.
base::Status<PlanError> Shrinker::CutSharedTable(uint64_t l1_entry_offset, uint64_t l2_offset,
                                                 uint64_t first_entry) {
  const qcow2::Geometry& g = image_.geometry;
  const uint64_t cs = g.cluster_size;
  uint8_t* copy = arena_.Allocate(cs, 512);
  if (copy == nullptr) return Fail(PlanError::kScratchTooSmall);
  const uint64_t from = first_entry * g.l2_entry_bytes;
  __builtin_memcpy(copy, l2_, from);
  __builtin_memset(copy + from, 0, cs - from);
  // A hole inside the file first (as qemu does; the file is cut where qemu cuts it), else room
  // at the end.
  uint64_t hole = 0;
  bool found;
  TRY(found, FindFreeRun(image_, table_, editor_, 0, 1, &hole));
  Allocation alloc;
  if (found) {
    TRY_STATUS(editor_.Adjust(hole, +1));
    TRY_STATUS(editor_.Flush(sink_, Phase::kRefcountIncrement));
    alloc.first_cluster = hole;
  } else {
    TRY(alloc, AllocateClusters(image_, 1, table_, editor_, arena_));
    if (alloc.table_clusters != 0) TRY_STATUS(CheckOldTableCounted(image_, editor_));
    TRY_STATUS(EmitAllocation(image_, alloc, editor_, arena_, sink_));
    if (alloc.table_clusters != 0) {
      table_ = alloc.table;
      table_entries_ = alloc.table_entries;
      table_offset_ = alloc.table_first * cs;
    }
  }
  const uint64_t new_l2 = alloc.first_cluster * cs;
  uint8_t entry[8];
  base::StoreBe64(entry, qcow2::EncodeL1(new_l2, /*copied=*/true));
  if (!Emit(sink_, StepKind::kWrite, Phase::kNewMetadata, new_l2, cs, copy) ||
      !Emit(sink_, StepKind::kWrite, Phase::kPointer, l1_entry_offset, 8, entry)) {
    return Fail(PlanError::kIoError);
  }
  TRY_STATUS(editor_.Adjust(l2_offset / cs, -1));
  if (alloc.table_clusters != 0) TRY_STATUS(FreeOldTable(image_, editor_));
  return DereferenceEntries(l2_offset, first_entry, g.l2_entries, &summary_.entries_dropped);
}

base::Status<PlanError> Shrinker::DropWholeTables(uint64_t first_index) {
  const qcow2::Geometry& g = image_.geometry;
  const uint64_t l1_size = image_.header.l1_size;
  for (uint64_t batch = first_index; batch < l1_size; batch += kL1Batch) {
    const uint64_t count = l1_size - batch < kL1Batch ? l1_size - batch : kL1Batch;
    const uint64_t batch_offset = image_.header.l1_table_offset + 8 * batch;
    if (!reader_.Read(batch_offset, 8 * count, l1_)) return Fail(PlanError::kIoError);
    uint64_t first = count, last = 0;
    for (uint64_t i = 0; i < count; ++i) {
      if (base::LoadBe64(l1_ + 8 * i) == 0) continue;
      if (first == count) first = i;
      last = i;
    }
    if (first == count) continue;
    if (!Emit(sink_, StepKind::kZero, Phase::kPointerDrop, batch_offset + 8 * first,
              8 * (last - first + 1))) {
      return Fail(PlanError::kIoError);
    }
    for (uint64_t i = first; i <= last; ++i) {
      uint64_t l2_offset = 0;
      TRY_STATUS(ReadL2(base::LoadBe64(l1_ + 8 * i), &l2_offset));
      if (l2_offset == 0) continue;
      uint64_t ignored = 0;
      TRY_STATUS(DereferenceEntries(l2_offset, 0, g.l2_entries, &ignored));
      TRY_STATUS(editor_.Adjust(l2_offset / g.cluster_size, -1));
      ++summary_.l2_tables_dropped;
    }
  }
  return {};
}

// Refcount blocks that now count nothing but possibly themselves leave the refcount table, as
// qemu's shrink does, so the file can be cut before them. Which blocks are empty is decided
// once, before any leaves (a block that counted a leaving block stays, as with qemu). Each
// table entry is cleared first; then a block counted by another block is dereferenced there.
base::Status<PlanError> Shrinker::DropEmptyBlocks() {
  const uint64_t cs = image_.geometry.cluster_size;
  const uint64_t per_block = image_.geometry.refcount_entries;
  const uint64_t table_offset = table_offset_;
  const uint64_t entries = table_entries_;
  // One bit per table entry.
  uint8_t* empty_blocks = arena_.Allocate(entries / 8 + 1, 8);
  if (empty_blocks == nullptr) return Fail(PlanError::kScratchTooSmall);
  __builtin_memset(empty_blocks, 0, entries / 8 + 1);
  for (uint64_t r = 0; r < entries; ++r) {
    if (table_[r] == 0) continue;
    const uint64_t self = table_[r] / cs;
    bool empty = true;
    for (uint64_t i = 0; i < per_block && empty; ++i) {
      uint64_t refcount;
      TRY(refcount, editor_.Get(r * per_block + i));
      if (refcount != 0 && !(r * per_block + i == self && refcount == 1)) empty = false;
    }
    if (empty) empty_blocks[r / 8] |= static_cast<uint8_t>(1u << (r % 8));
  }
  for (uint64_t r = 0; r < entries; ++r) {
    if ((empty_blocks[r / 8] & (1u << (r % 8))) == 0) continue;
    uint8_t zero[8] = {};
    if (!Emit(sink_, StepKind::kWrite, Phase::kPointerDrop, table_offset + 8 * r, 8, zero)) {
      return Fail(PlanError::kIoError);
    }
    const uint64_t self = table_[r] / cs;
    editor_.Forget(r);
    table_[r] = 0;
    if (self / per_block != r) TRY_STATUS(editor_.Adjust(self, -1));
  }
  return editor_.Flush(sink_, Phase::kRefcountDecrement);
}

// The highest host cluster with a non-zero refcount (the header's cluster at least).
base::Result<uint64_t, PlanError> Shrinker::LastUsedCluster() {
  const uint64_t per_block = image_.geometry.refcount_entries;
  for (uint64_t r = table_entries_; r-- > 0;) {
    if (table_[r] == 0) continue;
    for (uint64_t i = per_block; i-- > 0;) {
      uint64_t refcount;
      TRY(refcount, editor_.Get(r * per_block + i));
      if (refcount != 0) return r * per_block + i;
    }
  }
  return uint64_t{0};
}

base::Result<ShrinkSummary, PlanError> Shrinker::Run(uint64_t new_size) {
  if (l2_ == nullptr || l1_ == nullptr) return Fail(PlanError::kScratchTooSmall);
  const qcow2::Geometry& g = image_.geometry;
  // 1. The new size: from here on the guest sees the new image.
  uint8_t field[8];
  base::StoreBe64(field, new_size);
  if (!Emit(sink_, StepKind::kWrite, Phase::kHeader, kHeaderSizeOffset, 8, field)) {
    return Fail(PlanError::kIoError);
  }
  // 2. Entries past the new end, then 3. whole tables past it.
  uint64_t kept_clusters = 0;
  if (!base::CheckedAlignUp(new_size, g.cluster_size, &kept_clusters)) {
    return Fail(PlanError::kCorruptL1);
  }
  kept_clusters /= g.cluster_size;
  const uint64_t partial_index = kept_clusters / g.l2_entries;
  const uint64_t first_entry = kept_clusters % g.l2_entries;
  if (first_entry != 0 && partial_index < image_.header.l1_size) {
    TRY_STATUS(CutPartialTable(partial_index, first_entry));
  }
  TRY_STATUS(DropWholeTables(base::DivRoundUp(kept_clusters, g.l2_entries)));
  TRY_STATUS(editor_.Flush(sink_, Phase::kRefcountDecrement));
  // 4. Refcount blocks with nothing left to count, then cut the file after the last cluster
  // in use.
  TRY_STATUS(DropEmptyBlocks());
  uint64_t last;
  TRY(last, LastUsedCluster());
  summary_.new_file_size = image_.file_size;
  const uint64_t end = (last + 1) * g.cluster_size;
  if (end < image_.file_size) {
    if (!Emit(sink_, StepKind::kSetSize, Phase::kTruncate, 0, end)) {
      return Fail(PlanError::kIoError);
    }
    summary_.new_file_size = end;
  }
  return summary_;
}

}  // namespace

base::Result<ShrinkSummary, PlanError> PlanQcow2Shrink(const Qcow2Image& image,
                                                       uint64_t new_size,
                                                       const ImageReader& reader,
                                                       base::Arena& arena,
                                                       const StepSink& sink) {
  auto* table = reinterpret_cast<uint64_t*>(arena.Allocate(8 * image.refcount_table_entries, 8));
  if (table == nullptr) return Fail(PlanError::kScratchTooSmall);
  __builtin_memcpy(table, image.refcount_table, 8 * image.refcount_table_entries);
  Shrinker shrinker(image, reader, arena, sink, table);
  return shrinker.Run(new_size);
}

}  // namespace instar::resize
