// Why an image writer (Qcow2Writer, VmdkWriter) refused to open an image or stopped. Callers
// (rebase, commit) map each code 1:1 onto their ABI error set. Every code that comes from
// image bytes carries a detail (base::Error::detail) saying where. Once a writer call fails,
// every later call returns that first error again. Header-only, freestanding.
#pragma once

#include "crates/base/result.h"
#include "crates/image_write/plan_error.h"

namespace instar::image_write {

enum class WriteError {
  kIoError,               // a read failed or the sink refused a step; detail: offset if known
  kScratchTooSmall,       // the tables and caches this image needs do not fit the arena
  kBadHeader,             // qcow2 header refused; detail: the qcow2::HeaderError value
  kImageCorruptFlag,      // qcow2 "corrupt" bit set
  kDirtyImage,            // qcow2 "dirty" bit set (lazy refcounts not yet repaired)
  kExternalDataFile,      // qcow2 with an external data file
  kEncrypted,             // detail: crypt method
  kExtendedL2,            // qcow2 with extended L2 entries (subclusters): not written
  kCorruptL1,             // detail: offset of the L1 table or of the bad entry's L2 table
  kCorruptL2,             // detail: host offset of the L2 table, or of the bad data cluster
  kCorruptRefcountTable,  // detail: offset
  kCorruptRefcount,       // a referenced cluster has refcount 0, or would wrap; detail: cluster
  kOutOfRange,            // guest cluster range past the virtual size; detail: first cluster
  kSizeNotSectorMultiple, // Grow: new size not a multiple of 512; detail: size
  kNotGrowing,            // Grow: new size not larger than the virtual size; detail: size
  kL1TooLarge,            // Grow: the new size needs more L1 entries than qemu allows
  kGrowUnaligned,         // Grow with zeroing: old size not cluster aligned and its last
                          // cluster not allocated in this image (needs backing data)
  kVmdkNotSparse,         // not a hosted sparse extent (bad magic, or not monolithicSparse)
  kVmdkStreamOptimized,   // streamOptimized (compressed grains, markers): refused as a target
  kVmdkCorrupt,           // detail: offset of the directory, table or grain outside the file
  kVmdkBadDescriptor,     // Grow: the embedded descriptor cannot take the new size
};

// The writer's code for an error of a shared piece (RefcountEditor, cluster allocator,
// OpenQcow2, the resize grow planners).
inline WriteError FromPlanError(PlanError e) {
  switch (e) {
    case PlanError::kIoError: return WriteError::kIoError;
    case PlanError::kScratchTooSmall: return WriteError::kScratchTooSmall;
    case PlanError::kL1TooLarge: return WriteError::kL1TooLarge;
    case PlanError::kSizeNotSectorMultiple: return WriteError::kSizeNotSectorMultiple;
    case PlanError::kV2WithSnapshots: return WriteError::kBadHeader;  // resize shrink only
    case PlanError::kImageCorruptFlag: return WriteError::kImageCorruptFlag;
    case PlanError::kDirtyImage: return WriteError::kDirtyImage;
    case PlanError::kExternalDataFile: return WriteError::kExternalDataFile;
    case PlanError::kEncrypted: return WriteError::kEncrypted;
    case PlanError::kCorruptL1: return WriteError::kCorruptL1;
    case PlanError::kCorruptL2: return WriteError::kCorruptL2;
    case PlanError::kCorruptRefcountTable: return WriteError::kCorruptRefcountTable;
    case PlanError::kCorruptRefcount: return WriteError::kCorruptRefcount;
    case PlanError::kFormatCannotResize: return WriteError::kVmdkNotSparse;
    case PlanError::kVmdkCorrupt: return WriteError::kVmdkCorrupt;
    case PlanError::kVmdkBadDescriptor: return WriteError::kVmdkBadDescriptor;
  }
  return WriteError::kIoError;  // unreachable: the switch covers every code
}

inline base::Error<WriteError> FromPlanError(base::Error<PlanError> e) {
  return base::Fail(FromPlanError(e.code), e.detail);
}

}  // namespace instar::image_write
