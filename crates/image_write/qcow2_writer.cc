#include "crates/image_write/qcow2_writer.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/image_write/cluster_allocator.h"
#include "crates/qcow2/geometry.h"
#include "crates/resize/qcow2_grow.h"

namespace instar::image_write {
namespace {

using base::Fail;

constexpr uint32_t kDefaultPendingFrees = 1024;
// Lookups scan the caches; beyond this many slots a scan costs more than a re-read saves.
constexpr uint32_t kMaxL2Slots = 256;
// 64 KiB hold a header and its extensions in practice; the whole first cluster is read only
// when they do not (keeps the arena for the caches when clusters are large).
constexpr uint64_t kFirstHeadRead = 64u << 10;

template <class T>
base::Result<T, WriteError> W(base::Result<T, PlanError> r) {
  if (!r.ok()) return FromPlanError(r.error());
  return r.value();
}
base::Status<WriteError> W(base::Status<PlanError> s) {
  if (!s.ok()) return FromPlanError(s.error());
  return {};
}

bool EmitBytes(const StepSink& sink, Phase phase, uint64_t offset, uint64_t length,
               const uint8_t* bytes) {
  return Emit(sink, bytes == nullptr ? StepKind::kZero : StepKind::kWrite, phase, offset, length,
              bytes);
}

// Reads the header (first cluster) and the refcount table into the arena.
base::Result<Qcow2Image, WriteError> OpenImage(const ImageReader& reader, base::Arena& arena) {
  uint64_t head_bytes = reader.size < kFirstHeadRead ? reader.size : kFirstHeadRead;
  for (int attempt = 0;; ++attempt) {
    const uint64_t mark = arena.used();
    uint8_t* head = arena.Allocate(head_bytes == 0 ? 1 : head_bytes, 512);
    if (head == nullptr) return Fail(WriteError::kScratchTooSmall);
    if (head_bytes != 0 && !reader.Read(0, head_bytes, head)) return Fail(WriteError::kIoError, 0);
    auto opened = OpenQcow2(reader, base::ByteView(head, head_bytes), arena);
    if (opened.ok()) return opened.value();
    const auto failure = opened.error();
    const uint64_t whole = uint64_t{1} << qcow2::kMaxClusterBits;
    if (failure.code.header_failed && attempt == 0 && reader.size > head_bytes) {
      arena.Rewind(mark);
      head_bytes = reader.size < whole ? reader.size : whole;
      continue;
    }
    if (failure.code.header_failed) {
      return Fail(WriteError::kBadHeader, static_cast<unsigned long long>(failure.code.header_error));
    }
    return Fail(FromPlanError(failure.code.plan_error), failure.detail);
  }
}

// Passes steps on while noting how far they reach: the file's end after a grow planner ran.
struct EndTracker {
  const StepSink* inner = nullptr;
  uint64_t end = 0;

  static bool Forward(void* self, const Step& step) {
    auto* t = static_cast<EndTracker*>(self);
    uint64_t end = step.length;
    if (step.kind != StepKind::kSetSize && !base::CheckedAdd(step.offset, step.length, &end)) {
      return false;
    }
    if (end > t->end) t->end = end;
    return t->inner->Emit(step);
  }
};

}  // namespace

base::Result<Qcow2Writer*, WriteError> Qcow2Writer::Open(const ImageReader& reader,
                                                         const StepSink& sink,
                                                         base::Arena& arena,
                                                         const Qcow2WriterLimits& limits) {
  void* raw = arena.Allocate(sizeof(Qcow2Writer), alignof(Qcow2Writer));
  if (raw == nullptr) return Fail(WriteError::kScratchTooSmall);
  auto* w = new (raw) Qcow2Writer();
  w->reader_ = reader;
  w->sink_ = sink;
  w->arena_ = &arena;
  w->limits_ = limits;
  TRY_STATUS(w->Load());

  const uint64_t cs = w->image_.geometry.cluster_size;
  w->free_capacity_ = limits.pending_frees != 0 ? limits.pending_frees : kDefaultPendingFrees;
  w->frees_ = reinterpret_cast<FreeRun*>(
      arena.Allocate(uint64_t{sizeof(FreeRun)} * w->free_capacity_, alignof(FreeRun)));
  if (w->frees_ == nullptr) return Fail(WriteError::kScratchTooSmall);

  // The caches: half of the budget each, at least one table and one block.
  const uint64_t per_slot = cs + 128;
  const uint64_t budget = limits.cache_bytes != 0 ? limits.cache_bytes : arena.remaining() / 2;
  uint64_t slots = budget / per_slot;
  if (slots < 2) slots = 2;
  uint64_t l2_slots = slots / 2;
  if (l2_slots > kMaxL2Slots) l2_slots = kMaxL2Slots;
  uint64_t block_slots = slots - slots / 2;
  if (block_slots > kMaxCacheBlocks) block_slots = kMaxCacheBlocks;
  if (arena.remaining() < (l2_slots + block_slots) * per_slot + 1024) {
    return Fail(WriteError::kScratchTooSmall);
  }
  void* cache_raw = arena.Allocate(sizeof(TableCache), alignof(TableCache));
  void* editor_raw = arena.Allocate(sizeof(RefcountEditor), alignof(RefcountEditor));
  if (cache_raw == nullptr || editor_raw == nullptr) return Fail(WriteError::kScratchTooSmall);
  w->l2_cache_ = new (cache_raw) TableCache(cs, static_cast<uint32_t>(l2_slots), arena);
  w->editor_ = new (editor_raw)
      RefcountEditor(reader, w->image_.geometry, w->image_.refcount_table,
                     w->image_.refcount_table_entries, arena, static_cast<uint32_t>(block_slots));
  if (w->l2_cache_->capacity() == 0) return Fail(WriteError::kScratchTooSmall);
  w->editor_->AllowEvictionWrites(&w->sink_, Phase::kRefcountIncrement);
  return w;
}

base::Status<WriteError> Qcow2Writer::Load() {
  TRY(image_, OpenImage(reader_, *arena_));
  if (image_.geometry.extended_l2) return Fail(WriteError::kExtendedL2);
  const uint64_t l1_bytes = uint64_t{image_.header.l1_size} * 8;
  l1_ = arena_->Allocate(l1_bytes == 0 ? 8 : l1_bytes, 512);
  if (l1_ == nullptr) return Fail(WriteError::kScratchTooSmall);
  if (l1_bytes != 0 && !reader_.Read(image_.header.l1_table_offset, l1_bytes, l1_)) {
    return Fail(WriteError::kIoError, image_.header.l1_table_offset);
  }
  l1_dirty_ = false;
  return {};
}

base::Status<WriteError> Qcow2Writer::Latch(base::Status<WriteError> status) {
  if (!status.ok() && !failed_) {
    failed_ = true;
    error_ = status.error();
  }
  return status;
}

uint64_t Qcow2Writer::guest_clusters() const {
  return base::DivRoundUp(image_.header.size, image_.geometry.cluster_size);
}

base::Status<WriteError> Qcow2Writer::CheckRange(uint64_t first, uint64_t count) const {
  uint64_t end = 0;
  if (!base::CheckedAdd(first, count, &end) || end > guest_clusters()) {
    return Fail(WriteError::kOutOfRange, first);
  }
  return {};
}

base::Result<uint64_t, WriteError> Qcow2Writer::L2OffsetAt(uint64_t l1_index) {
  const uint64_t entry_offset = image_.header.l1_table_offset + 8 * l1_index;
  if (l1_index >= image_.header.l1_size) return Fail(WriteError::kCorruptL1, entry_offset);
  const qcow2::L1Entry e = qcow2::DecodeL1(base::LoadBe64(l1_ + 8 * l1_index));
  if (e.reserved_bits) return Fail(WriteError::kCorruptL1, entry_offset);
  if (e.l2_offset == 0) return uint64_t{0};
  uint64_t end = 0;
  if ((e.l2_offset & (image_.geometry.cluster_size - 1)) != 0 ||
      !base::CheckedAdd(e.l2_offset, image_.geometry.cluster_size, &end) ||
      end > image_.file_size || IsFixedMetadata(image_.ClusterOf(e.l2_offset))) {
    return Fail(WriteError::kCorruptL1, e.l2_offset);
  }
  return e.l2_offset;
}

void Qcow2Writer::SetL1(uint64_t l1_index, uint64_t l2_offset) {
  base::StoreBe64(l1_ + 8 * l1_index, qcow2::EncodeL1(l2_offset, true));
  if (!l1_dirty_) {
    l1_dirty_ = true;
    l1_dirty_first_ = l1_dirty_last_ = l1_index;
  } else {
    if (l1_index < l1_dirty_first_) l1_dirty_first_ = l1_index;
    if (l1_index > l1_dirty_last_) l1_dirty_last_ = l1_index;
  }
}

bool Qcow2Writer::IsFixedMetadata(uint64_t cluster) const {
  const uint64_t l1_first = image_.ClusterOf(image_.header.l1_table_offset);
  const uint64_t table_first = image_.ClusterOf(image_.header.refcount_table_offset);
  return cluster == 0 ||
         (image_.l1_clusters != 0 && cluster >= l1_first && cluster - l1_first < image_.l1_clusters) ||
         (cluster >= table_first && cluster - table_first < image_.header.refcount_table_clusters);
}

base::Result<uint64_t, WriteError> Qcow2Writer::RefcountOf(uint64_t cluster) {
  uint64_t refcount;
  TRY(refcount, W(editor_->Get(cluster)));
  if (refcount == 0) return Fail(WriteError::kCorruptRefcount, cluster);
  return refcount;
}

base::Result<TableSlot*, WriteError> Qcow2Writer::TakeSlot(uint64_t l1_index) {
  TableSlot* slot = l2_cache_->Take(l1_index);
  if (slot == nullptr) {
    TRY_STATUS(FlushImpl());
    slot = l2_cache_->Take(l1_index);
    if (slot == nullptr) return Fail(WriteError::kScratchTooSmall);
  }
  return slot;
}

base::Result<TableSlot*, WriteError> Qcow2Writer::LoadL2(uint64_t l1_index, uint64_t l2_offset) {
  TableSlot* slot = l2_cache_->Find(l1_index);
  if (slot != nullptr) return slot;
  TRY(slot, TakeSlot(l1_index));
  slot->used = false;  // until it holds the table
  if (!reader_.Read(l2_offset, image_.geometry.cluster_size, slot->bytes)) {
    return Fail(WriteError::kIoError, l2_offset);
  }
  uint64_t refcount;
  TRY(refcount, RefcountOf(image_.ClusterOf(l2_offset)));
  slot->host_offset = l2_offset;
  slot->shared = refcount > 1;
  slot->used = true;
  return slot;
}

base::Result<TableSlot*, WriteError> Qcow2Writer::WritableL2(uint64_t l1_index) {
  const uint64_t cs = image_.geometry.cluster_size;
  uint64_t l2_offset;
  TRY(l2_offset, L2OffsetAt(l1_index));
  if (l2_offset == 0) {
    uint64_t cluster;
    TRY(cluster, AllocateRun(1));
    TableSlot* slot;
    TRY(slot, TakeSlot(l1_index));
    __builtin_memset(slot->bytes, 0, cs);
    slot->host_offset = cluster * cs;
    slot->fresh = slot->dirty = true;
    SetL1(l1_index, slot->host_offset);
    return slot;
  }
  TableSlot* slot;
  TRY(slot, LoadL2(l1_index, l2_offset));
  if (slot->shared) {
    // Copy on write: the snapshot keeps the old table, the active L1 moves to the copy, and
    // the old table loses the active tree's reference once the L1 entry is on disk.
    uint64_t cluster;
    TRY(cluster, AllocateRun(1));
    slot->host_offset = cluster * cs;
    slot->fresh = slot->dirty = true;
    slot->shared = false;
    SetL1(l1_index, slot->host_offset);
    TRY_STATUS(AddFree(image_.ClusterOf(l2_offset), 1));
  } else if (!qcow2::DecodeL1(base::LoadBe64(l1_ + 8 * l1_index)).copied) {
    SetL1(l1_index, l2_offset);  // refcount 1: the entry must say so
  }
  return slot;
}

base::Result<qcow2::L2Entry, WriteError> Qcow2Writer::EntryAt(const TableSlot& slot,
                                                              uint64_t index) const {
  const uint64_t raw = base::LoadBe64(slot.bytes + 8 * index);
  const qcow2::L2Entry e = qcow2::DecodeL2(image_.geometry, raw, 0);
  switch (e.kind) {
    case qcow2::ClusterKind::kUnallocated:
    case qcow2::ClusterKind::kZeroPlain:
      return e;
    case qcow2::ClusterKind::kNormal:
    case qcow2::ClusterKind::kZeroAllocated:
      if (e.unaligned_offset || e.host_offset >= image_.file_size) {
        return Fail(WriteError::kCorruptL2, e.host_offset);
      }
      return e;
    case qcow2::ClusterKind::kCompressed: {
      uint64_t end = 0;
      if (!base::CheckedAdd(e.host_offset & ~uint64_t{511}, e.compressed_bytes, &end) ||
          (e.host_offset & ~uint64_t{511}) == 0 || end > base::DivRoundUp(image_.file_size, 512) * 512 +
              image_.geometry.cluster_size) {
        return Fail(WriteError::kCorruptL2, e.host_offset);
      }
      return e;
    }
  }
  return Fail(WriteError::kCorruptL2, slot.host_offset);
}

base::Result<ClusterMapping, WriteError> Qcow2Writer::Map(uint64_t guest_cluster) {
  if (failed_) return error_;
  auto mapped = [&]() -> base::Result<ClusterMapping, WriteError> {
    TRY_STATUS(CheckRange(guest_cluster, 1));
    ClusterMapping m;
    const uint64_t per_l2 = image_.geometry.l2_entries;
    uint64_t l2_offset;
    TRY(l2_offset, L2OffsetAt(guest_cluster / per_l2));
    if (l2_offset == 0) return m;
    TableSlot* slot;
    TRY(slot, LoadL2(guest_cluster / per_l2, l2_offset));
    qcow2::L2Entry e;
    TRY(e, EntryAt(*slot, guest_cluster % per_l2));
    switch (e.kind) {
      case qcow2::ClusterKind::kUnallocated:
        break;
      case qcow2::ClusterKind::kZeroPlain:
      case qcow2::ClusterKind::kZeroAllocated:
        m.state = ClusterState::kZero;
        m.host_offset = e.host_offset;
        break;
      case qcow2::ClusterKind::kNormal:
        m.state = ClusterState::kData;
        m.host_offset = e.host_offset;
        break;
      case qcow2::ClusterKind::kCompressed:
        m.state = ClusterState::kCompressed;
        m.host_offset = e.host_offset;
        m.compressed_bytes = e.compressed_bytes;
        break;
    }
    return m;
  }();
  if (!mapped.ok()) (void)Latch(mapped.error());
  return mapped;
}

base::Result<bool, WriteError> Qcow2Writer::OverwritableInPlace(const qcow2::L2Entry& e) {
  if (e.kind != qcow2::ClusterKind::kNormal && e.kind != qcow2::ClusterKind::kZeroAllocated) {
    return false;
  }
  const uint64_t cluster = image_.ClusterOf(e.host_offset);
  if (IsFixedMetadata(cluster)) return Fail(WriteError::kCorruptL2, e.host_offset);
  uint64_t refcount;
  TRY(refcount, RefcountOf(cluster));
  return refcount == 1;
}

base::Result<uint64_t, WriteError> Qcow2Writer::AllocateRun(uint64_t count) {
  const uint64_t cs = image_.geometry.cluster_size;
  uint64_t first = 0;
  bool found;
  TRY(found, W(FindFreeRun(image_, image_.refcount_table, *editor_, free_hint_, count, &first)));
  if (found) {
    for (uint64_t c = first; c < first + count; ++c) {
      if (IsFixedMetadata(c)) return Fail(WriteError::kCorruptRefcount, c);
      TRY_STATUS(W(editor_->Adjust(c, +1)));
    }
    TRY_STATUS(W(editor_->Flush(sink_, Phase::kRefcountIncrement)));
  } else {
    const uint64_t mark = arena_->used();
    Allocation a;
    TRY(a, W(AllocateClusters(image_, count, image_.refcount_table, *editor_, *arena_)));
    if (a.table_clusters != 0) TRY_STATUS(W(CheckOldTableCounted(image_, *editor_)));
    TRY_STATUS(W(EmitAllocation(image_, a, *editor_, *arena_, sink_)));
    if (a.table_clusters != 0) {
      // The header now names the new table; the old one's clusters are freed at the flush.
      const uint64_t old_first = image_.ClusterOf(image_.header.refcount_table_offset);
      const uint64_t old_clusters = image_.header.refcount_table_clusters;
      image_.refcount_table = a.table;
      image_.refcount_table_entries = a.table_entries;
      image_.header.refcount_table_offset = a.table_first * cs;
      image_.header.refcount_table_clusters = static_cast<uint32_t>(a.table_clusters);
      TRY_STATUS(AddFree(old_first, old_clusters));
    } else {
      arena_->Rewind(mark);  // the allocation's temporaries; nothing in it outlives the call
    }
    first = a.first_cluster;
    uint64_t end_bytes = 0;
    if (!base::CheckedMul(first + count, cs, &end_bytes)) {
      return Fail(WriteError::kCorruptRefcount, first);
    }
    if (end_bytes > image_.file_size) image_.file_size = end_bytes;
  }
  free_hint_ = first + count;
  stats_.clusters_allocated += count;
  return first;
}

base::Status<WriteError> Qcow2Writer::AddFree(uint64_t cluster, uint64_t count) {
  if (count == 0) return {};
  if (free_count_ != 0) {
    FreeRun& last = frees_[free_count_ - 1];
    if (last.cluster + last.count == cluster) {
      last.count += count;
      return {};
    }
  }
  if (free_count_ == free_capacity_) TRY_STATUS(FlushImpl());
  frees_[free_count_++] = FreeRun{cluster, count};
  return {};
}

base::Status<WriteError> Qcow2Writer::FreeAllocation(const qcow2::L2Entry& e) {
  switch (e.kind) {
    case qcow2::ClusterKind::kUnallocated:
    case qcow2::ClusterKind::kZeroPlain:
      return {};
    case qcow2::ClusterKind::kNormal:
    case qcow2::ClusterKind::kZeroAllocated:
      return AddFree(image_.ClusterOf(e.host_offset), 1);
    case qcow2::ClusterKind::kCompressed: {
      // Every host cluster the compressed bytes touch holds one reference for them.
      const uint64_t start = e.host_offset & ~uint64_t{511};
      const uint64_t first = image_.ClusterOf(start);
      const uint64_t last = image_.ClusterOf(start + e.compressed_bytes - 1);
      return AddFree(first, last - first + 1);
    }
  }
  return {};
}

base::Status<WriteError> Qcow2Writer::QueueData(uint64_t host_offset, uint64_t length,
                                                const uint8_t* bytes) {
  const bool continues =
      pending_.length != 0 && pending_.host_offset + pending_.length == host_offset &&
      ((bytes == nullptr && pending_.bytes == nullptr) ||
       (bytes != nullptr && pending_.bytes != nullptr && pending_.bytes + pending_.length == bytes));
  if (continues) {
    pending_.length += length;
    return {};
  }
  TRY_STATUS(EmitPendingData());
  pending_ = PendingData{host_offset, length, bytes};
  return {};
}

base::Status<WriteError> Qcow2Writer::EmitPendingData() {
  if (pending_.length == 0) return {};
  const PendingData p = pending_;
  pending_ = PendingData{};
  if (!EmitBytes(sink_, Phase::kData, p.host_offset, p.length, p.bytes)) {
    return Fail(WriteError::kIoError, p.host_offset);
  }
  ++stats_.data_steps;
  return {};
}

base::Status<WriteError> Qcow2Writer::WriteRange(uint64_t first, uint64_t count,
                                                 const uint8_t* data) {
  TRY_STATUS(CheckRange(first, count));
  const uint64_t cs = image_.geometry.cluster_size;
  const uint64_t per_l2 = image_.geometry.l2_entries;
  for (uint64_t c = first; c < first + count;) {
    const uint64_t l1_index = c / per_l2;
    const uint64_t within = c % per_l2;
    const uint64_t n = per_l2 - within < first + count - c ? per_l2 - within : first + count - c;
    TableSlot* slot;
    TRY(slot, WritableL2(l1_index));
    // Pass 1: how many clusters need a new home; they get one contiguous run.
    uint64_t needed = 0;
    for (uint64_t k = 0; k < n; ++k) {
      qcow2::L2Entry e;
      TRY(e, EntryAt(*slot, within + k));
      bool in_place;
      TRY(in_place, OverwritableInPlace(e));
      if (!in_place) ++needed;
    }
    uint64_t next_new = 0;
    if (needed != 0) {
      TRY(next_new, AllocateRun(needed));
    }
    // Pass 2: data out, entries in, replaced allocations queued for freeing.
    for (uint64_t k = 0; k < n; ++k) {
      qcow2::L2Entry e;
      TRY(e, EntryAt(*slot, within + k));
      bool in_place;
      TRY(in_place, OverwritableInPlace(e));
      const uint64_t host = in_place ? e.host_offset : (next_new++) * cs;
      const uint8_t* bytes = data == nullptr ? nullptr : data + (c - first + k) * cs;
      TRY_STATUS(QueueData(host, cs, bytes));
      base::StoreBe64(slot->bytes + 8 * (within + k), qcow2::EncodeL2Normal(host, true));
      slot->dirty = true;
      if (!in_place) TRY_STATUS(FreeAllocation(e));
    }
    c += n;
  }
  return EmitPendingData();
}

base::Status<WriteError> Qcow2Writer::ZeroFlags(uint64_t first, uint64_t count) {
  TRY_STATUS(CheckRange(first, count));
  const uint64_t per_l2 = image_.geometry.l2_entries;
  for (uint64_t c = first; c < first + count;) {
    const uint64_t l1_index = c / per_l2;
    const uint64_t within = c % per_l2;
    const uint64_t n = per_l2 - within < first + count - c ? per_l2 - within : first + count - c;
    c += n;
    TableSlot* slot;
    TRY(slot, WritableL2(l1_index));
    for (uint64_t k = within; k < within + n; ++k) {
      qcow2::L2Entry e;
      TRY(e, EntryAt(*slot, k));
      if (e.kind == qcow2::ClusterKind::kZeroPlain ||
          e.kind == qcow2::ClusterKind::kZeroAllocated) {
        continue;
      }
      base::StoreBe64(slot->bytes + 8 * k, qcow2::kZeroFlag);
      slot->dirty = true;
      TRY_STATUS(FreeAllocation(e));
    }
  }
  return {};
}

base::Status<WriteError> Qcow2Writer::Discard(uint64_t first, uint64_t count) {
  TRY_STATUS(CheckRange(first, count));
  const uint64_t per_l2 = image_.geometry.l2_entries;
  for (uint64_t c = first; c < first + count;) {
    const uint64_t l1_index = c / per_l2;
    const uint64_t within = c % per_l2;
    const uint64_t n = per_l2 - within < first + count - c ? per_l2 - within : first + count - c;
    c += n;
    uint64_t l2_offset;
    TRY(l2_offset, L2OffsetAt(l1_index));
    if (l2_offset == 0) continue;
    // Read-only look first: a table with nothing to discard is not copied or written.
    TableSlot* slot;
    TRY(slot, LoadL2(l1_index, l2_offset));
    bool any = false;
    for (uint64_t k = within; k < within + n && !any; ++k) {
      any = base::LoadBe64(slot->bytes + 8 * k) != 0;
    }
    if (!any) continue;
    TRY(slot, WritableL2(l1_index));
    for (uint64_t k = within; k < within + n; ++k) {
      qcow2::L2Entry e;
      TRY(e, EntryAt(*slot, k));
      if (base::LoadBe64(slot->bytes + 8 * k) == 0) continue;
      base::StoreBe64(slot->bytes + 8 * k, 0);
      slot->dirty = true;
      TRY_STATUS(FreeAllocation(e));
    }
  }
  return {};
}

base::Status<WriteError> Qcow2Writer::WriteClusters(uint64_t first, uint64_t count,
                                                    const uint8_t* data) {
  if (failed_) return error_;
  if (data == nullptr) return Latch(Fail(WriteError::kOutOfRange, first));
  return Latch(WriteRange(first, count, data));
}

base::Status<WriteError> Qcow2Writer::ZeroClusters(uint64_t first, uint64_t count) {
  if (failed_) return error_;
  // Version 2 has no zero flag: zeroed clusters, as qemu writes them.
  return Latch(image_.header.version >= 3 ? ZeroFlags(first, count)
                                          : WriteRange(first, count, nullptr));
}

base::Status<WriteError> Qcow2Writer::DiscardClusters(uint64_t first, uint64_t count) {
  if (failed_) return error_;
  return Latch(Discard(first, count));
}

base::Status<WriteError> Qcow2Writer::Flush() {
  if (failed_) return error_;
  return Latch(FlushImpl());
}

base::Status<WriteError> Qcow2Writer::FlushImpl() {
  const uint64_t cs = image_.geometry.cluster_size;
  // 1. data, 2. refcount increments (normally already out: allocations emit them at once).
  TRY_STATUS(EmitPendingData());
  TRY_STATUS(W(editor_->Flush(sink_, Phase::kRefcountIncrement)));
  // 3. L2 tables, new ones and changed ones, then the L1 entries that point to new ones.
  bool written = l2_cache_->ForEachDirty([&](TableSlot& slot) {
    if (!Emit(sink_, StepKind::kWrite, slot.fresh ? Phase::kNewMetadata : Phase::kPointer,
              slot.host_offset, cs, slot.bytes)) {
      return false;
    }
    slot.dirty = slot.fresh = false;
    ++stats_.l2_writes;
    return true;
  });
  if (!written) return Fail(WriteError::kIoError);
  if (l1_dirty_) {
    const uint64_t first = l1_dirty_first_;
    const uint64_t bytes = 8 * (l1_dirty_last_ - first + 1);
    if (!Emit(sink_, StepKind::kWrite, Phase::kPointer, image_.header.l1_table_offset + 8 * first,
              bytes, l1_ + 8 * first)) {
      return Fail(WriteError::kIoError, image_.header.l1_table_offset);
    }
    l1_dirty_ = false;
  }
  // 4. The dropped references: no pointer on disk holds them any more.
  editor_->AllowEvictionWrites(&sink_, Phase::kRefcountDecrement);
  for (uint32_t i = 0; i < free_count_; ++i) {
    for (uint64_t c = frees_[i].cluster; c < frees_[i].cluster + frees_[i].count; ++c) {
      TRY_STATUS(W(editor_->Adjust(c, -1)));
      uint64_t refcount;
      TRY(refcount, W(editor_->Get(c)));
      if (refcount == 0) {
        ++stats_.clusters_freed;
        if (c < free_hint_) free_hint_ = c;
      }
    }
  }
  free_count_ = 0;
  TRY_STATUS(W(editor_->Flush(sink_, Phase::kRefcountDecrement)));
  editor_->AllowEvictionWrites(&sink_, Phase::kRefcountIncrement);
  ++stats_.flushes;
  return {};
}

base::Status<WriteError> Qcow2Writer::ZeroPartialLastCluster(uint64_t old_size) {
  const uint64_t cs = image_.geometry.cluster_size;
  const uint64_t tail = old_size % cs;
  if (tail == 0) return {};
  const uint64_t last = old_size / cs;
  auto mapped = Map(last);
  if (!mapped.ok()) return mapped.error();
  const ClusterMapping m = mapped.value();
  if (m.state == ClusterState::kZero) return {};
  if (m.state != ClusterState::kData) return Fail(WriteError::kGrowUnaligned, old_size);
  // The cluster keeps its bytes below the old size and reads as zeros above it.
  const uint64_t mark = arena_->used();
  uint8_t* buffer = arena_->Allocate(cs, 512);
  if (buffer == nullptr) return Fail(WriteError::kScratchTooSmall);
  const uint64_t readable = image_.file_size - m.host_offset < cs ? image_.file_size - m.host_offset : cs;
  __builtin_memset(buffer, 0, cs);
  if (!reader_.Read(m.host_offset, readable < tail ? readable : tail, buffer)) {
    return Fail(WriteError::kIoError, m.host_offset);
  }
  auto status = WriteRange(last, 1, buffer);
  arena_->Rewind(mark);
  return status;
}

base::Status<WriteError> Qcow2Writer::GrowImpl(uint64_t new_size, bool zero_new_range) {
  const uint64_t old_size = image_.header.size;
  if (new_size % 512 != 0) return Fail(WriteError::kSizeNotSectorMultiple, new_size);
  if (new_size <= old_size) return Fail(WriteError::kNotGrowing, new_size);
  if (zero_new_range) TRY_STATUS(ZeroPartialLastCluster(old_size));
  TRY_STATUS(FlushImpl());
  const uint64_t mark = arena_->used();
  EndTracker tracker{&sink_, image_.file_size};
  const StepSink tracked{&tracker, &EndTracker::Forward};
  auto planned = resize::PlanQcow2Grow(image_, new_size, zero_new_range ? old_size : new_size,
                                       reader_, *arena_, tracked);
  arena_->Rewind(mark);
  if (!planned.ok()) return FromPlanError(planned.error());
  // The header, the L1 table and the refcount table may have moved: read them again.
  reader_.size = tracker.end;
  TRY_STATUS(Load());
  editor_->ForgetAll();
  editor_->SetTable(image_.refcount_table, image_.refcount_table_entries);
  l2_cache_->Clear();
  free_hint_ = 0;
  if (!zero_new_range) return {};
  // The new range reads as zeros before the header lets the guest see it.
  const uint64_t first_new = base::DivRoundUp(old_size, image_.geometry.cluster_size);
  image_.header.size = new_size;
  if (guest_clusters() > first_new) {
    TRY_STATUS(image_.header.version >= 3 ? ZeroFlags(first_new, guest_clusters() - first_new)
                                          : WriteRange(first_new, guest_clusters() - first_new,
                                                       nullptr));
  }
  TRY_STATUS(FlushImpl());
  uint8_t field[8];
  base::StoreBe64(field, new_size);
  if (!Emit(sink_, StepKind::kWrite, Phase::kHeader, kHeaderSizeOffset, 8, field)) {
    return Fail(WriteError::kIoError, kHeaderSizeOffset);
  }
  return {};
}

base::Status<WriteError> Qcow2Writer::Grow(uint64_t new_size, bool zero_new_range) {
  if (failed_) return error_;
  return Latch(GrowImpl(new_size, zero_new_range));
}

}  // namespace instar::image_write
