// Why a rebase planner refused. The operation maps each 1:1 onto abi::RebaseError.
// Header-only, freestanding.
#pragma once

namespace instar::rebase {

enum class PlanError {
  kIoError,             // a read failed, or the sink refused a step
  kHeaderNoSpace,       // the header cluster has no room for the extensions and the name
  kBackingPathTooLong,  // above qemu's 1023 bytes
  kRawExternalData,     // a backing file over a raw external data file
  kImageCorruptFlag,
  kDirtyImage,
  kEncrypted,
  kOverlayCorrupt,      // detail: offset
  kDescriptorTooLarge,  // the rewritten vmdk descriptor does not fit its room
  kScratchTooSmall,
  kInternalOverflow,
};

}  // namespace instar::rebase
