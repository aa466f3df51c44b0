#include "crates/resize/qcow2_grow.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
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
using image_write::kHeaderSizeOffset;

namespace {

using base::Fail;

}  // namespace

base::Result<GrowSummary, PlanError> PlanQcow2Grow(const Qcow2Image& image, uint64_t new_size,
                                                   uint64_t header_size,
                                                   const ImageReader& reader,
                                                   base::Arena& arena, const StepSink& sink) {
  const qcow2::Header& h = image.header;
  const uint64_t cs = image.geometry.cluster_size;
  GrowSummary summary;
  uint64_t l1_entries = 0;
  if (!qcow2::L1EntriesFor(image.geometry, new_size, &l1_entries) ||
      l1_entries > qcow2::kMaxL1Bytes / 8) {
    return Fail(PlanError::kL1TooLarge, l1_entries);
  }
  if (l1_entries < h.l1_size) l1_entries = h.l1_size;
  summary.l1_entries = l1_entries;
  const bool l1_grows = l1_entries > h.l1_size;
  // The old table's last cluster may have room for the new entries.
  const bool l1_in_place = l1_grows && h.l1_size != 0 && l1_entries * 8 <= image.l1_clusters * cs;
  summary.l1_relocated = l1_grows && !l1_in_place;
  const uint64_t new_l1_clusters = summary.l1_relocated ? base::DivRoundUp(l1_entries * 8, cs) : 0;

  // A private copy of the refcount table: the allocator may extend it.
  auto* table = reinterpret_cast<uint64_t*>(arena.Allocate(8 * image.refcount_table_entries, 8));
  if (table == nullptr) return Fail(PlanError::kScratchTooSmall);
  __builtin_memcpy(table, image.refcount_table, 8 * image.refcount_table_entries);
  RefcountEditor editor(reader, image.geometry, table, image.refcount_table_entries, arena,
                        CacheBlocksFor(image.geometry, arena));

  // Everything freed later must be counted now: a zero refcount means a corrupt image, found
  // before anything is written.
  const uint64_t old_l1_first = image.ClusterOf(h.l1_table_offset);
  if (summary.l1_relocated) {
    for (uint64_t c = old_l1_first; c < old_l1_first + image.l1_clusters; ++c) {
      uint64_t refcount;
      TRY(refcount, editor.Get(c));
      if (refcount == 0) return Fail(PlanError::kCorruptRefcount, c);
    }
  }
  Allocation alloc;
  TRY(alloc, AllocateClusters(image, new_l1_clusters, table, editor, arena));
  summary.new_refcount_blocks = alloc.blocks;
  summary.refcount_table_relocated = alloc.table_clusters != 0;
  if (summary.refcount_table_relocated) TRY_STATUS(CheckOldTableCounted(image, editor));

  // 1. Refcounts of every new cluster (new blocks included), nothing points to them yet;
  // 2. then the new refcount blocks become reachable: in place, or through a new table.
  TRY_STATUS(EmitAllocation(image, alloc, editor, arena, sink));

  // 3. The new L1 entries (zero: nothing allocated yet), then the header points to them.
  uint64_t l1_offset = h.l1_table_offset;
  if (summary.l1_relocated) {
    l1_offset = alloc.first_cluster * cs;
    const uint64_t old_bytes = uint64_t{h.l1_size} * 8;
    if (old_bytes != 0 && !Emit(sink, StepKind::kCopy, Phase::kNewMetadata, l1_offset, old_bytes,
                                nullptr, h.l1_table_offset)) {
      return Fail(PlanError::kIoError);
    }
    if (!Emit(sink, StepKind::kZero, Phase::kNewMetadata, l1_offset + old_bytes,
              new_l1_clusters * cs - old_bytes)) {
      return Fail(PlanError::kIoError);
    }
  } else if (l1_in_place) {
    if (!Emit(sink, StepKind::kZero, Phase::kNewMetadata, l1_offset + uint64_t{h.l1_size} * 8,
              (l1_entries - h.l1_size) * 8)) {
      return Fail(PlanError::kIoError);
    }
  }
  uint8_t fields[24];
  base::StoreBe64(fields, header_size);
  base::StoreBe32(fields + 8, h.crypt_method);
  base::StoreBe32(fields + 12, static_cast<uint32_t>(l1_entries));
  base::StoreBe64(fields + 16, l1_offset);
  if ((l1_grows || header_size != h.size) &&
      !Emit(sink, StepKind::kWrite, Phase::kHeader, kHeaderSizeOffset, l1_grows ? 24 : 8,
            fields)) {
    return Fail(PlanError::kIoError);
  }

  // 4. Free what no pointer holds any more: the old L1 table and the old refcount table.
  // Blocks may be written out early from here on: only decrements remain.
  editor.AllowEvictionWrites(&sink, Phase::kRefcountDecrement);
  if (summary.l1_relocated) {
    for (uint64_t c = old_l1_first; c < old_l1_first + image.l1_clusters; ++c) {
      TRY_STATUS(editor.Adjust(c, -1));
    }
  }
  if (summary.refcount_table_relocated) TRY_STATUS(FreeOldTable(image, editor));
  TRY_STATUS(editor.Flush(sink, Phase::kRefcountDecrement));
  return summary;
}

}  // namespace instar::resize
