// The snapshot table stage of a qcow2 check (qemu's qcow2_check_read_snapshot_table, before
// the refcount check, and qcow2_check_fix_snapshot_table, after it). Reading: the table pointer
// from the header, entries past qemu's maximum, entries with too much extra data and a table
// too big — reported, or under `-r all` discarded (a shorter table is written to the header's
// count at once: that only leaks, and the refcount check then frees what it leaked) — and v3
// entries without the VM-state and disk-size extra data. Fixing: under `-r all`, when entries
// needed it, the table is rewritten into the clusters qemu's allocator picks (adding the
// refcount blocks, or the larger refcount table, they need: qemu_allocation.h), in architecture
// §5 order: the new
// table, its refcounts, the header's count and offset, then the old table's refcounts (a
// cluster dropping to zero is zeroed, as qemu's discard leaves it). Counts go to
// CheckState::snapshot_counts. Freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/check/internal/check_state.h"

namespace instar::check {

// Sets image.snapshots_offset/snapshot_count to the table the check then walks; false when the
// check stops (failure set), as qemu's does.
bool ReadSnapshotTable(CheckState& s, uint32_t fix);

// Rewrites the table when the read stage found entries to repair and `fix` repairs errors.
void FixSnapshotTable(CheckState& s, uint32_t fix);

}  // namespace instar::check
