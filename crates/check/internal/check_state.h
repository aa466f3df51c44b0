// The state one qcow2 check run shares between its stages (reference walk, comparison,
// OFLAG_COPIED, rebuild): the image, the I/O and sink, the counts qemu keeps in its
// BdrvCheckResult, the computed-count window, and scratch buffers. Implementation detail of
// crates/check; freestanding, no allocation of its own.
#pragma once

#include <stdint.h>

#include "abi/check.h"
#include "crates/base/arena.h"
#include "crates/check/finding_sink.h"
#include "crates/check/image_access.h"
#include "crates/check/qcow2_image.h"
#include "crates/check/refcount_window.h"
#include "crates/check/stored_refcounts.h"

namespace instar::check {

// qemu's BdrvCheckResult counters (one check pass).
struct CheckCounts {
  int64_t corruptions = 0;
  int64_t leaks = 0;
  int64_t check_errors = 0;
  int64_t corruptions_fixed = 0;
  int64_t leaks_fixed = 0;
  uint64_t allocated_clusters = 0;
  uint64_t fragmented_clusters = 0;
  uint64_t compressed_clusters = 0;
};

// qemu's BDRV_FIX_* bits.
inline constexpr uint32_t kFixLeaks = 1;
inline constexpr uint32_t kFixErrors = 2;

struct CheckState {
  const ImageAccess* io = nullptr;
  FindingSink* sink = nullptr;  // the caller's sink, copied: the check moves its order key
  FindingSink sink_copy;
  // Order keys (FindingSink::order): the phase in the top bits, then, in a reference walk,
  // the walk's event number. A phase is a stage of qemu's check; `walk_phase` the phase of
  // the current reference walk, whose findings from later windows sort back into place.
  uint64_t phase = 0;
  uint64_t walk_phase = 0;
  Qcow2Image image;
  // The refcount table qemu keeps in memory until a rebuild has finished.
  uint64_t original_reftable_offset = 0;
  uint64_t original_reftable_entries = 0;
  StoredRefcounts stored;
  RefcountWindow window;
  CheckCounts counts;
  // What the snapshot table stage found and fixed (qemu keeps it apart until the end).
  CheckCounts snapshot_counts;
  // Clusters the computed count covers (qemu's nb_clusters: the file's clusters, grown by
  // references just past the end and by clusters a rebuild allocates).
  uint64_t domain_end = 0;
  // What the first window's walk started from (the file size and domain_end) and the size
  // it grew the file to (repairing refcount blocks outside the image): every later walk of the
  // same count sees the file as that walk did at each step.
  uint64_t walk_file_size = 0;
  uint64_t walk_domain = 0;
  uint64_t walk_grown_size = 0;
  bool rebuild = false;
  // A plain check compares OFLAG_COPIED with the stored refcounts while the walk has the
  // active L2 tables in hand; only when that finds (or cannot rule out) a mismatch does the
  // separate OFLAG_COPIED pass run to report it in qemu's order.
  bool copied_prescan = false;
  bool copied_mismatch_possible = false;
  bool io_failed = false;       // an I/O error the check cannot report as qemu would
  bool corruption_signaled = false;
  bool writable = false;
  abi::CheckFailure failure = abi::CheckFailure::kNone;  // qemu's check returned -errno
  // Scratch: one table cluster (L1/reftable/bitmap-table chunks) and one L2 table.
  uint8_t* chunk = nullptr;
  uint8_t* l2 = nullptr;
  uint64_t l2_buffered = UINT64_MAX;  // offset of the L2 table `l2` holds

  // Starts the next stage: what follows prints after everything before.
  void NextPhase() {
    ++phase;
    sink->order = phase << kOrderPhaseShift;
  }
  static constexpr uint32_t kOrderPhaseShift = 48;

  uint64_t cluster_size() const { return image.cluster_size(); }
  uint32_t cluster_bits() const { return image.cluster_bits(); }
  uint64_t refcount_max() const { return qcow2::MaxRefcount(image.refcount_order()); }
};

}  // namespace instar::check
