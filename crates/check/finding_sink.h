// FindingSink: where the check planner sends each line qemu-img's check would print (as an
// abi::CheckFinding the host formats). The guest batches them into records; host tests collect
// them. Header-only, freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "abi/check.h"

namespace instar::check {

struct FindingSink {
  void* context = nullptr;
  void (*finding)(void* context, const abi::CheckFinding& finding) = nullptr;
  void (*snapshot_finding)(void* context, const abi::CheckSnapshotFinding& finding) = nullptr;
  // Stamped on every finding: its place in qemu's output (abi::CheckFinding::order). The
  // planner moves it on as it goes.
  uint64_t order = 0;

  void Emit(abi::FindingKind kind, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0,
            uint32_t flags = 0) const {
    abi::CheckFinding f{static_cast<uint32_t>(kind), flags, a, b, c, order};
    finding(context, f);
  }
  void EmitSnapshot(abi::CheckSnapshotFinding f) const {
    f.order = order;
    snapshot_finding(context, f);
  }
};

}  // namespace instar::check
