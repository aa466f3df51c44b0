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
#include "crates/image_write/write_error.h"
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
  VmdkWriter() = default;
  // Private state may change; callers use only the public interface above.

  ImageReader reader_;
  StepSink sink_;
  base::Arena* arena_ = nullptr;
  vmdk::SparseHeader header_;
  uint64_t file_size_ = 0;
  VmdkWriterStats stats_;
};

}  // namespace instar::image_write
