// CopyDifferences: the data half of a safe rebase, as qemu-img rebase does it. For every
// guest unit (cluster or grain) the overlay does not own, the old backing chain's content is
// compared with the new chain's; where they differ the old content goes into the overlay
// (all-zero content as zero units), so the guest sees the same bytes once the header names
// the new backing file. Units are handled in runs of up to one buffer (reads of whole runs,
// one writer call per run of differing units), not one by one. A chain that is absent reads
// as zeros (no old backing file; -b ""), and each chain reads as zeros past its own virtual
// size (Chain::Read), as qemu reads a smaller backing file. The overlay writer's Flush ends
// it, so every change is on disk before the caller rewrites the header. Pure, freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/result.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/read_error.h"
#include "crates/image_write/write_error.h"
#include "crates/rebase/overlay_target.h"

namespace instar::rebase {

// Two buffers of `bytes` each (a multiple of the overlay's unit, at least one unit).
struct CopyBuffers {
  uint8_t* old_content = nullptr;
  uint8_t* new_content = nullptr;
  uint64_t bytes = 0;
};

// Called after each run with the guest bytes handled so far and the overlay's size.
struct CopyProgress {
  void* context = nullptr;
  void (*report)(void* context, uint64_t done, uint64_t total) = nullptr;
};

struct CopyStats {
  uint64_t units_compared = 0;  // units the overlay did not own
  uint64_t units_copied = 0;    // of those, the ones whose old content went in
  uint64_t bytes_copied = 0;    // data written (zero units count nothing)
};

// Which side failed, and its error; base::Error::detail carries the side's detail.
struct CopyFailure {
  enum class Side { kOldChain, kNewChain, kOverlay } side = Side::kOverlay;
  chain_read::ReadError read = chain_read::ReadError::kIoError;
  image_write::WriteError write = image_write::WriteError::kIoError;
};

base::Result<CopyStats, CopyFailure> CopyDifferences(OverlayTarget& overlay,
                                                     chain_read::Chain* old_chain,
                                                     chain_read::Chain* new_chain,
                                                     const CopyBuffers& buffers,
                                                     const CopyProgress& progress);

}  // namespace instar::rebase
