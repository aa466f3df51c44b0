// VmdkWriter: makes grains of a monolithicSparse VMDK hold given bytes, read as zeros, or be
// unallocated: the VMDK counterpart of Qcow2Writer, for commit into a VMDK base and rebase of
// a VMDK overlay.
//
// Crash safety (architecture section 5), in the order steps reach the StepSink:
//   1. grain data (Phase::kData): allocated grains are appended at the end of the file (a
//      grain already allocated is overwritten in place);
//   2. on Flush (or when the grain-table cache fills): new grain tables (kNewMetadata, one
//      for the primary and one for the redundant directory when a directory entry is 0),
//      then changed grain-table entries in both copies (kPointer), then the new entries of
//      the primary and the redundant grain directory (kPointer). VMDK has no refcounts:
//      a grain an entry stops referencing is leaked, as qemu leaks it.
// A crash after any single step leaves every grain reading its old or its new content.
//
// Grain directory, redundant directory, grain tables and grain-table entries are hostile:
// every offset is checked against the file and the grain size, with checked arithmetic.
//
// Supported: hosted sparse extents (version 1..3) described as monolithicSparse, with or
// without a redundant grain directory. Refused: streamOptimized or any compressed/markers
// extent (kVmdkStreamOptimized), anything else (kVmdkNotSparse).
//
// Reads go through the ImageReader, which must see the steps already emitted (see
// qcow2_writer.h; a dry-run sink validates only). Memory: the arena given to Open holds
// both grain directories and a bounded cache of grain tables. Freestanding; no I/O.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/image_write/cluster_mapping.h"
#include "crates/image_write/step.h"
#include "crates/image_write/table_cache.h"
#include "crates/image_write/write_error.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::image_write {

struct VmdkWriterStats {
  uint64_t data_steps = 0;        // data writes emitted (one per contiguous run)
  uint64_t grains_allocated = 0;
  uint64_t tables_allocated = 0;  // new grain tables (each pair counts once)
  uint64_t flushes = 0;
};

class VmdkWriter {
 public:
  // Reads and validates the sparse header, the embedded descriptor and both grain
  // directories through `reader`. `sink` must stay valid for the writer's life.
  // `cache_bytes` bounds the grain-table cache (0: a quarter of what the arena has left).
  static base::Result<VmdkWriter*, WriteError> Open(const ImageReader& reader,
                                                    const StepSink& sink, base::Arena& arena,
                                                    uint64_t cache_bytes = 0);

  uint64_t virtual_size() const;                 // capacity in bytes
  uint64_t grain_size() const;                   // bytes
  uint64_t guest_grains() const;                 // grains the capacity spans
  uint64_t file_size() const { return file_size_; }
  const VmdkWriterStats& stats() const { return stats_; }

  // The state of grain `grain` (kUnallocated, kZero or kData), unflushed changes included.
  base::Result<ClusterMapping, WriteError> Map(uint64_t grain);

  // Grains [first, first + count) hold `data` (count * grain_size bytes, valid only during
  // the call). Allocated grains are overwritten in place; the others are appended, one data
  // step per contiguous run.
  base::Status<WriteError> WriteGrains(uint64_t first, uint64_t count, const uint8_t* data);

  // Grains [first, first + count) read as zeros: the zeroed-grain entry (1) when the header
  // has the zeroed-grain flag (bit 2), else written zeros (kZero steps) as WriteGrains would.
  base::Status<WriteError> ZeroGrains(uint64_t first, uint64_t count);

  // Grains [first, first + count) become unallocated (entry 0; the grains leak).
  base::Status<WriteError> DiscardGrains(uint64_t first, uint64_t count);

  // Grows the capacity to `new_size` (a multiple of 512) with crates/resize's VMDK grow
  // planner; flushes first; needs a sink that applies steps (it re-reads the image).
  base::Status<WriteError> Grow(uint64_t new_size);

  // Writes everything pending in the order above.
  base::Status<WriteError> Flush();

 private:
  // Private state may change; callers use only the public interface above.
  struct PendingData {
    uint64_t offset = 0;
    uint64_t length = 0;
    const uint8_t* bytes = nullptr;  // null: zeros
  };
  // One grain directory (primary or redundant) in memory, little-endian as on disk.
  struct Directory {
    uint64_t offset = 0;  // bytes
    uint8_t* entries = nullptr;
  };

  VmdkWriter() = default;
  base::Status<WriteError> Load();
  base::Status<WriteError> Latch(base::Status<WriteError> status);
  base::Status<WriteError> CheckRange(uint64_t first, uint64_t count) const;
  base::Result<uint64_t, WriteError> TableSectorAt(const Directory& dir, uint64_t index) const;
  base::Result<TableSlot*, WriteError> TakeSlot(uint64_t index);
  base::Result<TableSlot*, WriteError> LoadTable(uint64_t index);  // null: no table
  base::Result<TableSlot*, WriteError> WritableTable(uint64_t index);
  base::Result<uint32_t, WriteError> EntryAt(const TableSlot& slot, uint64_t index) const;
  base::Result<uint64_t, WriteError> Append(uint64_t sectors);
  base::Status<WriteError> QueueData(uint64_t offset, uint64_t length, const uint8_t* bytes);
  base::Status<WriteError> EmitPendingData();
  base::Status<WriteError> WriteRange(uint64_t first, uint64_t count, const uint8_t* data);
  base::Status<WriteError> SetEntries(uint64_t first, uint64_t count, uint32_t value);
  base::Status<WriteError> GrowImpl(uint64_t new_size);
  base::Status<WriteError> FlushImpl();

  ImageReader reader_;
  StepSink sink_;
  base::Arena* arena_ = nullptr;
  uint64_t cache_bytes_ = 0;
  vmdk::SparseHeader header_;
  uint8_t* header_bytes_ = nullptr;      // the first sector
  base::ByteView descriptor_text_;
  vmdk::Descriptor* descriptor_ = nullptr;
  uint64_t file_size_ = 0;
  uint64_t next_sector_ = 0;             // where the next grain or table goes
  uint64_t table_sectors_ = 0;           // one grain table, rounded up to sectors
  uint64_t directory_entries_ = 0;
  Directory dirs_[2];                    // primary, redundant
  uint32_t dir_count_ = 1;
  bool dirs_dirty_ = false;
  uint64_t dirs_dirty_first_ = 0;
  uint64_t dirs_dirty_last_ = 0;
  TableCache* cache_ = nullptr;
  PendingData pending_;
  bool failed_ = false;
  base::Error<WriteError> error_{};
  VmdkWriterStats stats_;
};

}  // namespace instar::image_write
