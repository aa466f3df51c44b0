// The reference walk (qemu's calculate_refcounts): counts every reference to a host cluster
// that any metadata makes, into the state's window, and checks each structure on the way
// (reserved bits, alignment, regions past the end of the file, compressed descriptors,
// refcount table entries and blocks). Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/check/internal/check_state.h"

namespace instar::check {

enum class WalkMode {
  // The walk whose findings, statistics and in-walk repairs count: the first window of a
  // pass, or the only one.
  kPrimary,
  // A later window: reports only what belongs to its own clusters (count overflows,
  // refcount-block refcounts).
  kLaterWindow,
  // Recounting a window whose findings were already reported: reports nothing (the caller
  // restores the counters).
  kSilent,
};

// `fix`: kFixLeaks/kFixErrors.
void CalculateRefcounts(CheckState& s, WalkMode mode, uint32_t fix);

// qemu's nb_clusters for a file of `bytes`.
inline uint64_t ClustersFor(const CheckState& s, uint64_t bytes) {
  return (bytes + s.cluster_size() - 1) >> s.cluster_bits();
}

}  // namespace instar::check
