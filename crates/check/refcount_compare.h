// The comparison (qemu's compare_refcounts): computed against stored refcount for every
// cluster of the current window, reporting leaks and too-low counts in cluster order, and,
// when allowed, writing the computed value over the stored one (each write moves a refcount
// to its true value, so an interruption leaves the image no worse). Also qemu's
// check_oflag_copied, which runs after the comparison on the stored (possibly repaired)
// refcounts. Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/check/internal/check_state.h"

namespace instar::check {

// Compares clusters [window.base, min(window.end, domain_end)); raises *highest to the last
// cluster with a non-zero stored or computed refcount.
void CompareRefcounts(CheckState& s, uint32_t fix, uint64_t* highest);

// qemu discards a cluster whose refcount a repair drops to zero (the file then reads zeros
// there); it is unreferenced, so overwriting it is safe. Clipped to the file.
void DiscardCluster(CheckState& s, uint64_t cluster);

// OFLAG_COPIED on the active L1 and its L2 tables.
void CheckCopiedFlags(CheckState& s, uint32_t fix);

}  // namespace instar::check
