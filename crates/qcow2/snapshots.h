// The qcow2 snapshot table (QEMU's qcow2 specification, "Snapshots"): one entry at a time
// from the table's bytes. Pure and freestanding; no allocation; names are byte ranges into the
// caller's buffer.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::qcow2 {

inline constexpr uint32_t kMaxSnapshots = 65536;
inline constexpr uint64_t kMaxSnapshotTableBytes = 64u << 20;
inline constexpr uint32_t kMaxSnapshotExtraData = 1024;
inline constexpr uint32_t kSnapshotFixedBytes = 40;
inline constexpr uint64_t kNoIcount = 0xFFFFFFFFFFFFFFFFull;

enum class SnapshotError {
  kTruncated,      // an entry runs past the bytes given
  kExtraTooLarge,  // extra_data_size over kMaxSnapshotExtraData
  kTableTooLarge,  // the table grows past kMaxSnapshotTableBytes
};

struct Snapshot {
  uint64_t l1_table_offset = 0;
  uint32_t l1_size = 0;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
  uint64_t vm_clock_nsec = 0;
  uint64_t vm_state_size = 0;  // the 64-bit extra field when present
  uint64_t icount = kNoIcount;
  uint64_t id_offset = 0;      // into the bytes given
  uint32_t id_length = 0;
  uint64_t name_offset = 0;
  uint32_t name_length = 0;
  uint64_t entry_size = 0;     // bytes the entry takes, padding included
};

// Parses the entry at `offset` of `table`.
base::Result<Snapshot, SnapshotError> ParseSnapshot(base::ByteView table, uint64_t offset);

}  // namespace instar::qcow2
