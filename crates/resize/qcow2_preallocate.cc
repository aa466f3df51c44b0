#include "crates/resize/qcow2_preallocate.h"

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
using image_write::FreeOldTable;
using image_write::Phase;
using image_write::RefcountEditor;
using image_write::StepKind;

namespace {

using base::Fail;

// Extended L2 bitmaps: every subcluster allocated, none reading as zero; every subcluster
// reading as zero.
constexpr uint64_t kAllSubclustersAllocated = 0xFFFFFFFFull;
constexpr uint64_t kAllSubclustersZero = 0xFFFFFFFFull << 32;

class Preallocator {
 public:
  Preallocator(const Qcow2Image& image, const ImageReader& reader, base::Arena& arena,
               const StepSink& sink, uint64_t* table, FillMode mode)
      : image_(image), reader_(reader), arena_(arena), sink_(sink), mode_(mode),
        editor_(reader, image.geometry, table, image.refcount_table_entries, arena,
                CacheBlocksFor(image.geometry, arena)) {
    image_.refcount_table = table;
    l2_ = arena.Allocate(image.geometry.cluster_size, 512);
  }

  base::Result<PreallocateSummary, PlanError> Run(uint64_t old_size, uint64_t new_size);

 private:
  base::Status<PlanError> FillTable(uint64_t l1_index, uint64_t first, uint64_t end);
  // Whether entry `p` changes, and (when `host` is set) its new value.
  bool NeedsChange(const uint8_t* p) const;
  void Change(uint8_t* p, uint64_t host) const;

  Qcow2Image image_;  // kept current: file size and refcount table move as clusters are added
  const ImageReader& reader_;
  base::Arena& arena_;
  const StepSink& sink_;
  FillMode mode_;
  RefcountEditor editor_;
  uint8_t* l2_ = nullptr;
  PreallocateSummary summary_;
};

// Gives guest clusters [first, end) of L2 table `l1_index` (entries within the table) a host
// cluster each where they have none.
base::Status<PlanError> Preallocator::FillTable(uint64_t l1_index, uint64_t first,
                                                uint64_t end) {
  const qcow2::Geometry& g = image_.geometry;
  const uint64_t cs = g.cluster_size;
  const uint64_t l1_entry_offset = image_.header.l1_table_offset + 8 * l1_index;
  uint8_t raw[8];
  if (!reader_.Read(l1_entry_offset, 8, raw)) return Fail(PlanError::kIoError);
  const qcow2::L1Entry l1 = qcow2::DecodeL1(base::LoadBe64(raw));
  uint64_t old_l2_refcount = 0;
  if (l1.l2_offset != 0) {
    uint64_t l2_end = 0;
    if ((l1.l2_offset & (cs - 1)) != 0 || !base::CheckedAdd(l1.l2_offset, cs, &l2_end) ||
        l2_end > image_.file_size) {
      return Fail(PlanError::kCorruptL1, l1.l2_offset);
    }
    if (!reader_.Read(l1.l2_offset, cs, l2_)) return Fail(PlanError::kIoError);
    TRY(old_l2_refcount, editor_.Get(l1.l2_offset / cs));
    if (old_l2_refcount == 0) return Fail(PlanError::kCorruptRefcount, l1.l2_offset / cs);
  } else {
    __builtin_memset(l2_, 0, cs);
  }
  uint64_t changing = 0;
  for (uint64_t i = first; i < end; ++i) {
    if (NeedsChange(l2_ + i * g.l2_entry_bytes)) ++changing;
  }
  if (changing == 0) return {};
  // Host clusters for the data (none for zero flags).
  const uint64_t missing = mode_ == FillMode::kZeroFlags ? 0 : changing;
  // A table of our own is written anew: a new one, or a copy of one a snapshot shares.
  const bool new_table = l1.l2_offset == 0 || old_l2_refcount != 1;
  const uint64_t count = missing + (new_table ? 1 : 0);
  const Qcow2Image before = image_;
  Allocation alloc;
  TRY(alloc, AllocateClusters(image_, count, image_.refcount_table, editor_, arena_));
  if (alloc.table_clusters != 0) TRY_STATUS(CheckOldTableCounted(before, editor_));
  TRY_STATUS(EmitAllocation(image_, alloc, editor_, arena_, sink_));
  if (alloc.table_clusters != 0) {
    image_.refcount_table = alloc.table;
    image_.refcount_table_entries = alloc.table_entries;
    image_.header.refcount_table_offset = alloc.table_first * cs;
    image_.header.refcount_table_clusters = static_cast<uint32_t>(alloc.table_clusters);
  }
  const uint64_t table_at = new_table ? alloc.first_cluster * cs : l1.l2_offset;
  const uint64_t data_first = alloc.first_cluster + (new_table ? 1 : 0);
  const uint64_t end_of_data = (alloc.first_cluster + count) * cs;
  // The data clusters: zeros written (falloc, full) or the file extended over them.
  if (mode_ == FillMode::kZeroedData) {
    if (!Emit(sink_, StepKind::kZero, Phase::kNewMetadata, data_first * cs, missing * cs)) {
      return Fail(PlanError::kIoError);
    }
  } else if (mode_ == FillMode::kSparseData && end_of_data > image_.file_size &&
             !Emit(sink_, StepKind::kSetSize, Phase::kNewMetadata, 0, end_of_data)) {
    return Fail(PlanError::kIoError);
  }
  if (end_of_data > image_.file_size) image_.file_size = end_of_data;
  // The entries, then the table's pointer.
  uint64_t next = data_first;
  for (uint64_t i = first; i < end; ++i) {
    uint8_t* p = l2_ + i * g.l2_entry_bytes;
    if (!NeedsChange(p)) continue;
    Change(p, mode_ == FillMode::kZeroFlags ? 0 : next * cs);
    if (mode_ != FillMode::kZeroFlags) {
      ++next;
      ++summary_.data_clusters;
    }
  }
  if (new_table) {
    uint8_t entry[8];
    base::StoreBe64(entry, qcow2::EncodeL1(table_at, /*copied=*/true));
    if (!Emit(sink_, StepKind::kWrite, Phase::kNewMetadata, table_at, cs, l2_) ||
        !Emit(sink_, StepKind::kWrite, Phase::kPointer, l1_entry_offset, 8, entry)) {
      return Fail(PlanError::kIoError);
    }
    ++summary_.l2_tables;
    // A copied table: the shared one loses the active image's reference.
    if (l1.l2_offset != 0) TRY_STATUS(editor_.Adjust(l1.l2_offset / cs, -1));
  } else {
    const uint64_t from = first * g.l2_entry_bytes;
    if (!Emit(sink_, StepKind::kWrite, Phase::kPointer, table_at + from,
              (end - first) * g.l2_entry_bytes, l2_ + from)) {
      return Fail(PlanError::kIoError);
    }
  }
  if (alloc.table_clusters != 0) TRY_STATUS(FreeOldTable(before, editor_));
  return editor_.Flush(sink_, Phase::kRefcountDecrement);
}

bool Preallocator::NeedsChange(const uint8_t* p) const {
  const qcow2::Geometry& g = image_.geometry;
  const uint64_t raw = base::LoadBe64(p);
  const uint64_t bitmap = g.extended_l2 ? base::LoadBe64(p + 8) : 0;
  const qcow2::L2Entry e = qcow2::DecodeL2(g, raw, bitmap);
  if (mode_ != FillMode::kZeroFlags) {
    return e.kind == qcow2::ClusterKind::kUnallocated || e.kind == qcow2::ClusterKind::kZeroPlain;
  }
  if (g.extended_l2) return bitmap != kAllSubclustersZero;
  return e.kind != qcow2::ClusterKind::kZeroPlain && e.kind != qcow2::ClusterKind::kZeroAllocated;
}

// Data modes: points the entry to host cluster `host`. Zero flags: the entry reads as zeros;
// a host cluster it already has stays allocated to it (its refcount is unchanged).
void Preallocator::Change(uint8_t* p, uint64_t host) const {
  const qcow2::Geometry& g = image_.geometry;
  if (mode_ != FillMode::kZeroFlags) {
    base::StoreBe64(p, qcow2::EncodeL2Normal(host, /*copied=*/true));
    if (g.extended_l2) base::StoreBe64(p + 8, kAllSubclustersAllocated);
    return;
  }
  if (g.extended_l2) {
    base::StoreBe64(p + 8, kAllSubclustersZero);
    return;
  }
  const uint64_t raw = base::LoadBe64(p);
  const qcow2::L2Entry e = qcow2::DecodeL2(g, raw, 0);
  base::StoreBe64(p, e.kind == qcow2::ClusterKind::kNormal ? raw | qcow2::kZeroFlag
                                                           : qcow2::kZeroFlag);
}

base::Result<PreallocateSummary, PlanError> Preallocator::Run(uint64_t old_size,
                                                              uint64_t new_size) {
  if (l2_ == nullptr) return Fail(PlanError::kScratchTooSmall);
  const qcow2::Geometry& g = image_.geometry;
  const uint64_t first_cluster = old_size / g.cluster_size;
  const uint64_t end_cluster = base::DivRoundUp(new_size, g.cluster_size);
  for (uint64_t c = first_cluster; c < end_cluster;) {
    const uint64_t l1_index = c / g.l2_entries;
    const uint64_t table_end = (l1_index + 1) * g.l2_entries;
    const uint64_t end = table_end < end_cluster ? table_end : end_cluster;
    if (l1_index >= image_.header.l1_size) return Fail(PlanError::kCorruptL1, l1_index);
    TRY_STATUS(FillTable(l1_index, c % g.l2_entries, c % g.l2_entries + (end - c)));
    c = end;
  }
  return summary_;
}

}  // namespace

base::Result<PreallocateSummary, PlanError> PlanQcow2Preallocate(const Qcow2Image& image,
                                                                 uint64_t old_size,
                                                                 uint64_t new_size,
                                                                 FillMode mode,
                                                                 const ImageReader& reader,
                                                                 base::Arena& arena,
                                                                 const StepSink& sink) {
  auto* table = reinterpret_cast<uint64_t*>(arena.Allocate(8 * image.refcount_table_entries, 8));
  if (table == nullptr) return Fail(PlanError::kScratchTooSmall);
  __builtin_memcpy(table, image.refcount_table, 8 * image.refcount_table_entries);
  Preallocator preallocator(image, reader, arena, sink, table, mode);
  return preallocator.Run(old_size, new_size);
}

}  // namespace instar::resize
