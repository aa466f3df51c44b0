#include "crates/check/snapshot_table.h"

#include "crates/base/endian.h"
#include "crates/check/corruption_event.h"
#include "crates/check/metadata_overlap.h"
#include "crates/check/qemu_allocation.h"
#include "crates/check/qcow2_image.h"

namespace instar::check {
namespace {

using abi::CheckFailure;
using abi::FindingKind;
using abi::SnapshotUpdateFailure;

constexpr uint64_t kSnapshotPointerOffset = 60;  // nb_snapshots, then snapshots_offset
constexpr uint64_t kIntMax = 0x7FFFFFFF;

uint64_t Align8(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

uint32_t KeptExtra(const SnapshotEntry& e) {
  return e.extra_bytes < qcow2::kMaxSnapshotExtraData ? e.extra_bytes
                                                      : qcow2::kMaxSnapshotExtraData;
}

void Stop(CheckState& s, CheckFailure failure) {
  ++s.snapshot_counts.check_errors;
  s.failure = failure;
}

void UpdateFailed(CheckState& s, SnapshotUpdateFailure why) {
  s.sink->Emit(FindingKind::kSnapshotTableUpdateFailed, static_cast<uint64_t>(why));
  Stop(s, why == SnapshotUpdateFailure::kTooLarge ? CheckFailure::kFileTooLarge
                                                  : CheckFailure::kIoError);
}

// qemu keeps an id or a name as a C string: up to its first NUL.
bool TextLength(CheckState& s, uint64_t offset, uint32_t size, uint32_t* length) {
  const uint64_t cs = s.cluster_size();
  for (uint32_t done = 0; done < size;) {
    const uint32_t n = size - done < cs ? size - done : static_cast<uint32_t>(cs);
    if (!s.io->Read(offset + done, n, s.l2)) return false;
    for (uint32_t i = 0; i < n; ++i) {
      if (s.l2[i] == 0) {
        *length = done + i;
        return true;
      }
    }
    done += n;
  }
  *length = size;
  return true;
}

// Streams the new table into consecutive bytes from `offset`, a cluster at a time.
class TableWriter {
 public:
  TableWriter(CheckState& s, uint64_t offset) : s_(s), offset_(offset) {
    s_.l2_buffered = UINT64_MAX;
  }
  bool Put(const uint8_t* bytes, uint64_t n) {
    while (n > 0) {
      const uint64_t room = s_.cluster_size() - filled_;
      const uint64_t take = n < room ? n : room;
      __builtin_memcpy(s_.chunk + filled_, bytes, take);
      filled_ += take;
      bytes += take;
      n -= take;
      if (filled_ == s_.cluster_size() && !Flush()) return false;
    }
    return true;
  }
  bool PadTo8() {
    static constexpr uint8_t kZeros[8] = {};
    const uint64_t at = written_ + filled_;
    return Put(kZeros, Align8(at) - at);
  }
  // Copies `n` bytes of the file at `from`.
  bool Copy(uint64_t from, uint64_t n) {
    const uint64_t cs = s_.cluster_size();
    for (uint64_t done = 0; done < n;) {
      const uint64_t piece = n - done < cs ? n - done : cs;
      if (!s_.io->Read(from + done, piece, s_.l2) || !Put(s_.l2, piece)) return false;
      done += piece;
    }
    return true;
  }
  bool Flush() {
    if (filled_ != 0 && !s_.io->Write(offset_ + written_, filled_, s_.chunk)) return false;
    written_ += filled_;
    filled_ = 0;
    return true;
  }

 private:
  CheckState& s_;
  uint64_t offset_;
  uint64_t written_ = 0;
  uint64_t filled_ = 0;
};

// One entry as qemu's qcow2_write_snapshots writes it: the VM state size in the extra data
// (and in the header when it fits 32 bits), the disk size (the image's, when the entry had
// none), the instruction count (all ones, when it had none), the unknown extra data kept, id
// and name as C strings.
bool WriteEntry(CheckState& s, const SnapshotEntry& e, uint32_t id_len, uint32_t name_len,
                TableWriter& out) {
  uint8_t header[kSnapshotHeaderBytes];
  __builtin_memcpy(header, e.header, sizeof header);
  const uint32_t kept = KeptExtra(e);
  uint8_t known[kSnapshotKnownExtraData] = {};
  if (!s.io->Read(e.extra_offset, kept < sizeof known ? kept : sizeof known, known)) return false;
  uint64_t vm_state = base::LoadBe32(header + 32);
  if (kept >= 8) vm_state = base::LoadBe64(known);
  const uint64_t disk_size =
      kept >= 16 ? base::LoadBe64(known + 8) : (s.image.header.size / 512) * 512;
  const uint64_t icount = kept >= 24 ? base::LoadBe64(known + 16) : qcow2::kNoIcount;
  base::StoreBe32(header + 32, vm_state <= 0xFFFFFFFFull ? static_cast<uint32_t>(vm_state) : 0);
  base::StoreBe32(header + 36, kept > kSnapshotKnownExtraData ? kept : kSnapshotKnownExtraData);
  base::StoreBe16(header + 12, static_cast<uint16_t>(id_len));
  base::StoreBe16(header + 14, static_cast<uint16_t>(name_len));
  base::StoreBe64(known, vm_state);
  base::StoreBe64(known + 8, disk_size);
  base::StoreBe64(known + 16, icount);
  return out.PadTo8() && out.Put(header, sizeof header) && out.Put(known, sizeof known) &&
         (kept <= kSnapshotKnownExtraData ||
          out.Copy(e.extra_offset + kSnapshotKnownExtraData, kept - kSnapshotKnownExtraData)) &&
         out.Copy(e.id_offset, id_len) && out.Copy(e.name_offset, name_len);
}

}  // namespace

bool ReadSnapshotTable(CheckState& s, uint32_t fix) {
  s.snapshot_counts = CheckCounts();
  s.image.snapshot_count = 0;  // what qemu knows of a table it could not read
  s.image.snapshots_offset = 0;
  const bool repair = (fix & kFixErrors) != 0;
  const uint32_t flags = repair ? abi::kFindingRepairing : 0;
  uint8_t pointer[12];
  if (!s.io->Read(kSnapshotPointerOffset, sizeof pointer, pointer)) {
    s.io_failed = true;
    Stop(s, CheckFailure::kIoError);
    return false;
  }
  uint32_t count = base::LoadBe32(pointer);
  const uint64_t offset = base::LoadBe64(pointer + 4);
  int64_t reduced = 0, dropped = 0;
  if (count > qcow2::kMaxSnapshots && repair) {
    s.sink->Emit(FindingKind::kSnapshotsOverhanging, count - qcow2::kMaxSnapshots);
    reduced += count - qcow2::kMaxSnapshots;
    count = qcow2::kMaxSnapshots;
  }
  if (count > qcow2::kMaxSnapshots) {
    s.sink->Emit(FindingKind::kSnapshotTableTooLarge, count - qcow2::kMaxSnapshots);
    Stop(s, CheckFailure::kFileTooLarge);
    return false;
  }
  if (!TableOffsetValid(offset, count, kSnapshotHeaderBytes, s.cluster_size())) {
    s.sink->Emit(FindingKind::kSnapshotTableOffsetInvalid);
    Stop(s, CheckFailure::kInvalidArgument);
    return false;
  }
  SnapshotReader reader(*s.io, offset, count);
  SnapshotEntry entry;
  uint64_t table_length = 0;  // as qemu would rewrite it, extra data clipped
  uint32_t kept = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (!reader.Next(&entry)) {
      s.sink->Emit(FindingKind::kSnapshotTableReadError);
      Stop(s, CheckFailure::kIoError);
      return false;
    }
    if (entry.extra_bytes > qcow2::kMaxSnapshotExtraData) {
      s.sink->Emit(FindingKind::kSnapshotExtraTooLarge, i, entry.extra_bytes, 0, flags);
      if (!repair) {
        Stop(s, CheckFailure::kFileTooLarge);
        return false;
      }
      ++dropped;
    }
    table_length = Align8(table_length) + kSnapshotHeaderBytes + KeptExtra(entry) + entry.id_size +
                   entry.name_size;
    if (table_length > qcow2::kMaxSnapshotTableBytes || entry.end - offset > kIntMax) {
      s.sink->Emit(FindingKind::kSnapshotTableTooBig, count - i, 0, 0, flags);
      if (!repair) {
        Stop(s, CheckFailure::kFileTooLarge);
        return false;
      }
      reduced += count - i;
      break;
    }
    kept = i + 1;
  }
  s.snapshot_counts.corruptions += reduced + dropped;
  if (reduced != 0) {
    // The shorter count goes to the header at once: that only leaks, and the refcount check
    // relies on the header's count.
    uint8_t field[4];
    base::StoreBe32(field, kept);
    if (!s.io->Write(kSnapshotPointerOffset, sizeof field, field)) {
      s.io_failed = true;
      Stop(s, CheckFailure::kIoError);
      return false;
    }
    s.snapshot_counts.corruptions_fixed += reduced;
    s.snapshot_counts.corruptions -= reduced;
  }
  s.image.snapshots_offset = offset;
  s.image.snapshot_count = kept;
  if (s.image.header.version >= 3) {
    SnapshotReader again(*s.io, offset, kept);
    for (uint64_t i = 0; again.Next(&entry); ++i) {
      if (KeptExtra(entry) >= kSnapshotRequiredExtraData) continue;
      ++s.snapshot_counts.corruptions;
      s.sink->Emit(FindingKind::kSnapshotIncomplete, i, 0, 0, flags);
    }
    if (again.io_failed()) s.io_failed = true;
  }
  return true;
}

void FixSnapshotTable(CheckState& s, uint32_t fix) {
  if (s.snapshot_counts.corruptions == 0 || (fix & kFixErrors) == 0) return;
  const uint64_t old_offset = s.image.snapshots_offset;
  const uint32_t count = s.image.snapshot_count;
  SnapshotEntry entry;
  uint64_t size = 0;
  uint64_t old_bytes = 0;  // qemu's snapshots_size of the table read
  {
    SnapshotReader reader(*s.io, old_offset, count);
    while (reader.Next(&entry)) {
      uint32_t id_len = 0, name_len = 0;
      if (!TextLength(s, entry.id_offset, entry.id_size, &id_len) ||
          !TextLength(s, entry.name_offset, entry.name_size, &name_len)) {
        return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
      }
      const uint32_t kept = KeptExtra(entry);
      size = Align8(size) + kSnapshotHeaderBytes +
             (kept > kSnapshotKnownExtraData ? kept : kSnapshotKnownExtraData) + id_len + name_len;
      if (size > qcow2::kMaxSnapshotTableBytes)
        return UpdateFailed(s, SnapshotUpdateFailure::kTooLarge);
    }
    if (reader.io_failed()) return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
    old_bytes = reader.table_bytes();
  }
  const uint64_t clusters = (size + s.cluster_size() - 1) >> s.cluster_bits();
  uint64_t first = 0;
  QemuAllocation allocation(s);
  if (!allocation.PrepareRun(clusters, &first)) return UpdateFailed(s, allocation.failure());
  const uint64_t new_offset = first << s.cluster_bits();
  // qemu's overlap check: free clusters may still hold metadata the refcounts do not count.
  abi::MetadataKind overlapped;
  if (OverlapsMetadata(s, new_offset, size, &overlapped)) {
    SignalCorruption(s, FindingKind::kOverlapCorruptEvent, static_cast<uint64_t>(overlapped), 0);
    return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
  }
  // 1. The new table, in clusters nothing references.
  TableWriter out(s, new_offset);
  SnapshotReader reader(*s.io, old_offset, count);
  while (reader.Next(&entry)) {
    uint32_t id_len = 0, name_len = 0;
    if (!TextLength(s, entry.id_offset, entry.id_size, &id_len) ||
        !TextLength(s, entry.name_offset, entry.name_size, &name_len) ||
        !WriteEntry(s, entry, id_len, name_len, out)) {
      return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
    }
  }
  if (reader.io_failed() || !out.Flush()) return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
  // 2. Its refcounts.
  for (uint64_t c = first; c < first + clusters; ++c) {
    if (!s.stored.Set(c, 1)) return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
  }
  if (!s.stored.Flush()) return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
  // 3. The header's count and offset.
  uint8_t pointer[12];
  base::StoreBe32(pointer, count);
  base::StoreBe64(pointer + 4, new_offset);
  if (!s.io->Write(kSnapshotPointerOffset, sizeof pointer, pointer)) {
    return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
  }
  s.image.snapshots_offset = new_offset;
  // 4. The old table's references.
  if (!FreeClusters(s, old_offset, old_bytes, true, nullptr)) {
    return UpdateFailed(s, SnapshotUpdateFailure::kIoError);
  }
  s.snapshot_counts.corruptions_fixed += s.snapshot_counts.corruptions;
  s.snapshot_counts.corruptions = 0;
}

}  // namespace instar::check
