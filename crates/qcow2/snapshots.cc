#include "crates/qcow2/snapshots.h"

#include "crates/base/checked.h"

namespace instar::qcow2 {

using base::Fail;

base::Result<Snapshot, SnapshotError> ParseSnapshot(base::ByteView table, uint64_t offset) {
  if (!table.Has(offset, kSnapshotFixedBytes)) return Fail(SnapshotError::kTruncated);
  Snapshot s;
  uint16_t id_size = 0, name_size = 0;
  uint32_t small_state = 0, extra = 0;
  table.Be64(offset + 0, &s.l1_table_offset);
  table.Be32(offset + 8, &s.l1_size);
  table.Be16(offset + 12, &id_size);
  table.Be16(offset + 14, &name_size);
  table.Be32(offset + 16, &s.date_sec);
  table.Be32(offset + 20, &s.date_nsec);
  table.Be64(offset + 24, &s.vm_clock_nsec);
  table.Be32(offset + 32, &small_state);
  table.Be32(offset + 36, &extra);
  if (extra > kMaxSnapshotExtraData) return Fail(SnapshotError::kExtraTooLarge);
  const uint64_t extra_at = offset + kSnapshotFixedBytes;
  if (!table.Has(extra_at, extra)) return Fail(SnapshotError::kTruncated);
  s.vm_state_size = small_state;
  if (extra >= 8) table.Be64(extra_at, &s.vm_state_size);
  if (extra >= 24) table.Be64(extra_at + 16, &s.icount);
  s.id_offset = extra_at + extra;
  s.id_length = id_size;
  s.name_offset = s.id_offset + id_size;
  s.name_length = name_size;
  const uint64_t end = s.name_offset + name_size;  // < 2^32 past offset: no overflow
  if (!table.Has(offset, end - offset)) return Fail(SnapshotError::kTruncated);
  uint64_t padded = 0;
  if (!base::CheckedAlignUp(end - offset, 8, &padded)) return Fail(SnapshotError::kTruncated);
  s.entry_size = padded;
  uint64_t table_end = 0;
  if (!base::CheckedAdd(offset, padded, &table_end) || table_end > kMaxSnapshotTableBytes) {
    return Fail(SnapshotError::kTableTooLarge);
  }
  return s;
}

}  // namespace instar::qcow2
