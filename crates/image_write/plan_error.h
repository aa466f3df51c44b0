// Why a resize planner, or a shared piece it uses (RefcountEditor, the cluster allocator,
// OpenQcow2), refused or stopped. The operation maps each 1:1 onto abi::ResizeError.
// Header-only, freestanding.
#pragma once

namespace instar::image_write {

enum class PlanError {
  kIoError,               // a read failed, or the sink refused a step
  kScratchTooSmall,       // the metadata this request touches does not fit the arena
  kL1TooLarge,            // detail: L1 entries the new size needs
  kSizeNotSectorMultiple,
  kV2WithSnapshots,
  kImageCorruptFlag,
  kDirtyImage,
  kExternalDataFile,
  kEncrypted,
  kCorruptL1,             // detail: offset
  kCorruptL2,             // detail: offset
  kCorruptRefcountTable,  // detail: offset
  kCorruptRefcount,       // detail: cluster index
  kFormatCannotResize,    // a vmdk instar does not grow (subformat, compression, > 2 TiB)
  kVmdkCorrupt,           // detail: offset of the table that lies outside the file
  kVmdkBadDescriptor,     // the new descriptor text does not fit, or it has no extent line
};

}  // namespace instar::image_write
