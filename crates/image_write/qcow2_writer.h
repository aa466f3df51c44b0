// Qcow2Writer: makes guest clusters of one qcow2 image (the active L1 tree) hold given bytes,
// read as zeros, or be unallocated, the way qemu's qcow2 driver would: overwrite in place
// what only the active tree references, allocate (and copy-on-write away from internal
// snapshots) everything else, keep OFLAG_COPIED right in L1 and L2 entries, and free what the
// active tree stops referencing. Rebase copies old-chain clusters in with it; commit writes
// the overlay's clusters into the base and then empties the overlay with it.
//
// Crash safety (architecture section 5). Every change reaches the image as Steps emitted to
// the caller's StepSink, in this order:
//   1. data clusters (Phase::kData), written by WriteClusters/ZeroClusters as they are called;
//   2. refcount increments for every newly referenced cluster, new refcount blocks and a
//      relocated refcount table first (kNewMetadata, kRefcountIncrement, kPointer, kHeader:
//      the table switch), emitted when the clusters are allocated, before anything points
//      to them;
//   3. on Flush (or when a bounded cache or the free list fills): new L2 tables
//      (kNewMetadata), changed L2 tables in place (kPointer), changed L1 entries (kPointer),
//      the header (kHeader, Grow only);
//   4. then the refcount decrements of every cluster the active tree stopped referencing
//      (kRefcountDecrement): replaced data clusters, compressed clusters, copied-away L2
//      tables. Until then freed clusters are not reused.
// A crash after any single step leaves an image qemu-img check calls clean or leaking only,
// with every guest cluster reading either its old or its new content.
//
// Host offsets and sizes read from the image are hostile: every table entry is checked
// (alignment, inside the file, reserved bits, refcount not zero) before use, with checked
// arithmetic; failures are WriteError codes with the offending offset as detail.
//
// Supported: versions 2 and 3, cluster sizes 512 B..2 MiB, refcount widths 1..64 bits,
// internal snapshots, compressed clusters (replaced, never written in place). Refused:
// extended L2 (kExtendedL2), external data file, encryption, corrupt or dirty flags.
//
// Reads go through the ImageReader, which must see the steps already emitted (the sink
// applies each step before returning; the writer re-reads tables it evicted). With a dry-run
// sink (null emit) everything is validated and planned, nothing is written, and tables read
// back after an eviction may be stale; a dry run is for validation and fuzzing only.
//
// Memory: everything comes from the arena given to Open (the L1 table, the refcount table,
// the L2 and refcount-block caches, the free list), sized once at Open; later calls allocate
// from it only for refcount-table relocations and Grow. Freestanding; no I/O of its own.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/qcow2/entries.h"
#include "crates/image_write/cluster_mapping.h"
#include "crates/image_write/qcow2_image.h"
#include "crates/image_write/refcount_editor.h"
#include "crates/image_write/step.h"
#include "crates/image_write/table_cache.h"
#include "crates/image_write/write_error.h"

namespace instar::image_write {

// Bounds of the writer's caches. Zero picks a default from what the arena has left at Open.
struct Qcow2WriterLimits {
  uint64_t cache_bytes = 0;     // L2 tables + refcount blocks (default: half of the arena
                                // left after the tables, at least one of each)
  uint32_t pending_frees = 0;   // freed host-cluster runs held until the next flush
                                // (default 1024)
};

// Counters for tests and benchmarks.
struct Qcow2WriterStats {
  uint64_t data_steps = 0;          // data writes emitted (one per contiguous host run)
  uint64_t clusters_allocated = 0;  // data and L2 clusters, at the end or in holes
  uint64_t clusters_freed = 0;      // refcount decrements that reached zero
  uint64_t l2_writes = 0;           // L2 tables written
  uint64_t flushes = 0;             // full flushes, explicit or forced by a full cache
};

class Qcow2Writer {
 public:
  // Reads and validates the header, the refcount table and the active L1 table through
  // `reader`; the writer object itself lives in the arena. `sink` receives every step, for
  // the writer's whole life (it must stay valid).
  static base::Result<Qcow2Writer*, WriteError> Open(const ImageReader& reader,
                                                     const StepSink& sink, base::Arena& arena,
                                                     const Qcow2WriterLimits& limits = {});

  uint64_t virtual_size() const { return image_.header.size; }
  uint64_t cluster_size() const { return image_.geometry.cluster_size; }
  uint32_t cluster_bits() const { return image_.geometry.cluster_bits; }
  // Guest clusters the virtual size spans (the last may be partly past the end).
  uint64_t guest_clusters() const;
  uint32_t version() const { return image_.header.version; }
  // The file's size as the emitted steps leave it (allocations extend it).
  uint64_t file_size() const { return image_.file_size; }
  const Qcow2WriterStats& stats() const { return stats_; }

  // The state of guest cluster `guest_cluster` in this image, unflushed changes included.
  base::Result<ClusterMapping, WriteError> Map(uint64_t guest_cluster);

  // Guest clusters [first, first + count) hold `data` (count * cluster_size bytes; valid only
  // during the call; a last cluster partly past the virtual size is written whole, the caller
  // pads it). A cluster whose host cluster has refcount 1 and is not compressed is
  // overwritten in place; every other one gets a new cluster, in holes (the first run of
  // free clusters long enough, scanning forward from where the last allocation was, as qemu
  // does) or at the end of the file. Contiguous host runs go out as one data step each.
  // An L2 table shared with a snapshot is copied first; one the L1 lacks is created.
  base::Status<WriteError> WriteClusters(uint64_t first, uint64_t count, const uint8_t* data);

  // Guest clusters [first, first + count) read as zeros, whatever their backing file holds.
  // Version 3: the L2 entry becomes the plain zero flag and the old allocation is freed
  // (clusters already reading as zeros are left alone). Version 2 has no zero flag: the
  // clusters are allocated (or overwritten in place, as WriteClusters) and zero-filled with
  // kZero steps, as qemu does.
  base::Status<WriteError> ZeroClusters(uint64_t first, uint64_t count);

  // Guest clusters [first, first + count) become unallocated (read through to the backing
  // file) and their allocations are freed: qemu's full discard, which commit uses to empty
  // the overlay. L2 tables stay even when all their entries become zero.
  base::Status<WriteError> DiscardClusters(uint64_t first, uint64_t count);

  // Grows the virtual size to `new_size` (a multiple of 512, larger than the current size)
  // with crates/resize's grow planner (larger L1 and refcount table as needed; snapshots
  // untouched). Flushes first. With `zero_new_range` the new range reads as zeros instead of
  // the backing file (qemu does this when the backing file is longer than the old size): the
  // header keeps the old size until the new clusters carry zero flags (v3) or zeroed
  // clusters (v2) and moves last. Needs a sink that applies steps (it re-reads the image).
  base::Status<WriteError> Grow(uint64_t new_size, bool zero_new_range);

  // Writes everything pending in the order above; afterwards the image on disk holds every
  // change made so far and the caches are clean.
  base::Status<WriteError> Flush();

 private:
  // Private state may change; callers use only the public interface above.
  struct FreeRun {
    uint64_t cluster = 0;
    uint64_t count = 0;
  };
  // Data to be written, grown while the next piece continues it in the file and in memory.
  struct PendingData {
    uint64_t host_offset = 0;
    uint64_t length = 0;
    const uint8_t* bytes = nullptr;  // null: zeros
  };
  enum class Fill { kData, kZeros };

  Qcow2Writer() = default;
  base::Status<WriteError> Load();
  base::Status<WriteError> Latch(base::Status<WriteError> status);
  base::Status<WriteError> CheckRange(uint64_t first, uint64_t count) const;
  base::Result<uint64_t, WriteError> L2OffsetAt(uint64_t l1_index);
  void SetL1(uint64_t l1_index, uint64_t l2_offset);
  base::Result<TableSlot*, WriteError> TakeSlot(uint64_t l1_index);
  base::Result<TableSlot*, WriteError> LoadL2(uint64_t l1_index, uint64_t l2_offset);
  base::Result<TableSlot*, WriteError> WritableL2(uint64_t l1_index);
  base::Result<qcow2::L2Entry, WriteError> EntryAt(const TableSlot& slot, uint64_t index) const;
  bool IsFixedMetadata(uint64_t cluster) const;
  base::Result<uint64_t, WriteError> RefcountOf(uint64_t cluster);
  base::Result<bool, WriteError> OverwritableInPlace(const qcow2::L2Entry& entry);
  base::Result<uint64_t, WriteError> AllocateRun(uint64_t count);
  base::Status<WriteError> FreeAllocation(const qcow2::L2Entry& entry);
  base::Status<WriteError> AddFree(uint64_t cluster, uint64_t count);
  base::Status<WriteError> QueueData(uint64_t host_offset, uint64_t length, const uint8_t* bytes);
  base::Status<WriteError> EmitPendingData();
  base::Status<WriteError> WriteRange(uint64_t first, uint64_t count, const uint8_t* data);
  base::Status<WriteError> ZeroFlags(uint64_t first, uint64_t count);
  base::Status<WriteError> Discard(uint64_t first, uint64_t count);
  base::Status<WriteError> ZeroPartialLastCluster(uint64_t old_size);
  base::Status<WriteError> GrowImpl(uint64_t new_size, bool zero_new_range);
  base::Status<WriteError> FlushImpl();

  ImageReader reader_;
  StepSink sink_;
  base::Arena* arena_ = nullptr;
  Qcow2WriterLimits limits_;
  Qcow2Image image_;
  uint8_t* l1_ = nullptr;  // the active L1 table as on disk (big-endian)
  bool l1_dirty_ = false;
  uint64_t l1_dirty_first_ = 0;
  uint64_t l1_dirty_last_ = 0;
  RefcountEditor* editor_ = nullptr;
  TableCache* l2_cache_ = nullptr;
  FreeRun* frees_ = nullptr;
  uint32_t free_capacity_ = 0;
  uint32_t free_count_ = 0;
  uint64_t free_hint_ = 0;  // where the next search for a hole starts (qemu's free index)
  PendingData pending_;
  bool failed_ = false;
  base::Error<WriteError> error_{};
  Qcow2WriterStats stats_;
};

}  // namespace instar::image_write
