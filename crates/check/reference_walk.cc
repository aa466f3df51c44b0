#include "crates/check/reference_walk.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/check/corruption_event.h"
#include "crates/check/image_access.h"
#include "crates/check/metadata_overlap.h"
#include "crates/qcow2/entries.h"

namespace instar::check {
namespace {

using abi::FindingKind;

constexpr uint64_t kBitmapEntryOffsetMask = 0x00FFFFFFFFFFFE00ull;
constexpr uint64_t kBitmapEntryReservedMask = 0xFF000000000001FEull;
constexpr uint64_t kBitmapEntryAllOnes = 1;
constexpr uint64_t kMaxBitmapDirectoryBytes = 64ull << 20;
constexpr uint32_t kBitmapDirEntryBytes = 24;
constexpr uint64_t kL2BitmapAllAlloc = 0xFFFFFFFFull;
constexpr uint64_t kL2BitmapAllZero = 0xFFFFFFFF00000000ull;
// abi::FindingKind::kResizeFailed's reasons.
constexpr uint64_t kResizeTooLarge = 0;
constexpr uint64_t kResizeInvalid = 1;

class Walk {
 public:
  Walk(CheckState& s, WalkMode mode, uint32_t fix)
      : s_(s), primary_(mode == WalkMode::kPrimary), silent_(mode == WalkMode::kSilent),
        fix_(fix) {
    if (primary_) {
      s.walk_file_size = s.io->Size();
      s.walk_domain = s.domain_end;
      s.walk_grown_size = s.walk_file_size;
    }
    file_len_ = s.walk_file_size;
    domain_ = s.walk_domain;
    Order(1);
  }

  void Run();

 private:
  void Report(FindingKind kind, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0) {
    if (primary_) s_.sink->Emit(kind, a, b, c);
  }
  void Corruption() {
    if (primary_) ++s_.counts.corruptions;
  }
  void Inc(uint64_t offset, uint64_t size);
  void CheckL1(uint64_t l1_offset, uint64_t entries, bool frag_info);
  void CheckL2(uint64_t l2_offset, bool frag_info);
  bool FixUnalignedPrealloc(uint64_t l2_offset, uint64_t index);
  void CheckSnapshots();
  void CheckBitmaps();
  void CheckBitmapTable(uint64_t offset, uint64_t entries);
  void CheckRefblocks();
  // A refcount block outside the image that the walk grew the file to hold (qemu truncates
  // the file up to its end): counted, and no refcount check (qemu's: it can only be 1).
  void Grown(uint64_t offset);
  void PrescanCopied(uint64_t entry, uint64_t offset);
  // Every window's walk makes the same events in the same order (the primary walk's in-walk
  // repairs change nothing a reference depends on), so an event's number places what it finds
  // among the other windows' findings: key 2n for what event n finds about a window's own
  // clusters, 2n + 1 for what is found between events n and n + 1.
  void Event() {
    if (events_ < kMaxEvents) ++events_;
    Order(2 * events_ + 1);
  }
  void Order(uint64_t key) { s_.sink->order = (s_.walk_phase << CheckState::kOrderPhaseShift) | key; }
  bool stopped() const { return s_.failure != abi::CheckFailure::kNone; }
  // A read qemu's check cannot do ends the whole check with EIO.
  void Stop(FindingKind kind) {
    if (!silent_) s_.sink->Emit(kind);
    ++s_.counts.check_errors;
    s_.failure = abi::CheckFailure::kIoError;
  }
  bool ReadChunk(uint64_t offset, uint64_t bytes) {
    if (s_.io->Read(offset, bytes, s_.chunk)) return true;
    s_.io_failed = true;
    return false;
  }

  CheckState& s_;
  bool primary_;
  bool silent_;
  uint32_t fix_;
  bool prescan_l2_ = false;  // the L2 table being walked is one CheckCopiedFlags visits
  static constexpr uint64_t kMaxEvents = (uint64_t{1} << (CheckState::kOrderPhaseShift - 1)) - 1;
  uint64_t events_ = 0;
  // The file size and qemu's nb_clusters at this step of the walk (see CheckState).
  uint64_t file_len_ = 0;
  uint64_t domain_ = 0;
};

// qemu_inc_refcounts_imrt: one more reference to every cluster of [offset, offset+size).
void Walk::Inc(uint64_t offset, uint64_t size) {
  Event();
  if (size == 0) return;
  const uint64_t cs = s_.cluster_size();
  // The last cluster may be partly past the end of the file, nothing further.
  uint64_t end = 0;
  if (!base::CheckedAdd(offset, size, &end) || end > INT64_MAX ||
      (end > file_len_ && end - file_len_ >= cs)) {
    Report(FindingKind::kRegionPastEof, offset, size);
    Corruption();
    return;
  }
  const uint64_t first = offset >> s_.cluster_bits();
  const uint64_t last = (offset + size - 1) >> s_.cluster_bits();
  if (last + 1 > domain_) domain_ = last + 1;
  if (last + 1 > s_.domain_end) s_.domain_end = last + 1;
  const uint64_t from = first > s_.window.base() ? first : s_.window.base();
  const uint64_t to = last + 1 < s_.window.end() ? last + 1 : s_.window.end();
  for (uint64_t k = from; k < to; ++k) {
    const uint64_t refcount = s_.window.Get(k);
    if (refcount == s_.refcount_max()) {
      Order(2 * events_);
      if (!silent_) s_.sink->Emit(FindingKind::kRefcountOverflow, k << s_.cluster_bits());
      Order(2 * events_ + 1);
      ++s_.counts.corruptions;
      continue;
    }
    s_.window.Set(k, refcount + 1);
  }
}

void Walk::CheckL1(uint64_t l1_offset, uint64_t entries, bool frag_info) {
  if (entries == 0 || stopped()) return;
  Inc(l1_offset, entries * 8);
  // qemu reads the whole table at once: a table it cannot read stops the check.
  if (l1_offset > kBlockLayerMaxLength || entries * 8 > kBlockLayerMaxLength - l1_offset) {
    Stop(FindingKind::kL1ReadError);
    return;
  }
  const uint64_t per_chunk = s_.cluster_size() / 8;
  for (uint64_t first = 0; first < entries; first += per_chunk) {
    const uint64_t n = entries - first < per_chunk ? entries - first : per_chunk;
    if (!ReadChunk(l1_offset + first * 8, n * 8)) return;
    if (stopped()) return;
    // CheckL2 reuses nothing of `chunk`, so entries stay valid while the L2s are checked.
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t raw = base::LoadBe64(s_.chunk + i * 8);
      if (raw == 0) continue;
      if ((raw & kL1EntryReservedMask) != 0) {
        Report(FindingKind::kL1ReservedBits, raw);
        Corruption();
      }
      const uint64_t l2_offset = raw & qcow2::kOffsetMask;
      if (frag_info && l2_offset != 0) PrescanCopied(raw, l2_offset);
      Inc(l2_offset, s_.cluster_size());
      if ((l2_offset & (s_.cluster_size() - 1)) != 0) {
        Report(FindingKind::kL2TableUnaligned, l2_offset);
        Corruption();
      }
      prescan_l2_ = frag_info && l2_offset != 0;
      CheckL2(l2_offset, frag_info);
      if (stopped()) return;
    }
  }
}

// qemu's fix_l2_entry_by_zero: an unaligned preallocated (zero) cluster becomes a plain zero
// cluster; the entry is written on its own, unless that would overwrite other metadata (then
// the check stops).
bool Walk::FixUnalignedPrealloc(uint64_t l2_offset, uint64_t index) {
  const uint32_t entry_bytes = s_.image.geometry.l2_entry_bytes;
  abi::MetadataKind overlapped;
  if (OverlapsMetadata(s_, l2_offset + index * entry_bytes, entry_bytes, &overlapped,
                       OverlapBit(abi::MetadataKind::kActiveL2))) {
    SignalCorruption(s_, FindingKind::kOverlapCorruptEvent, static_cast<uint64_t>(overlapped), 0);
    s_.sink->Emit(FindingKind::kL2EntryOverlap);
    ++s_.counts.check_errors;
    s_.failure = abi::CheckFailure::kIoError;
    return false;
  }
  uint8_t* e = s_.l2 + index * entry_bytes;
  if (s_.image.geometry.extended_l2) {
    uint64_t bitmap = base::LoadBe64(e + 8);
    bitmap |= bitmap << 32;
    bitmap &= kL2BitmapAllZero;
    base::StoreBe64(e + 8, bitmap);
    base::StoreBe64(e, 0);
  } else {
    base::StoreBe64(e, qcow2::kZeroFlag);
  }
  if (!s_.io->Write(l2_offset + index * entry_bytes, entry_bytes, e)) return false;
  --s_.counts.corruptions;
  ++s_.counts.corruptions_fixed;
  return true;
}

void Walk::CheckL2(uint64_t l2_offset, bool frag_info) {
  const qcow2::Geometry& g = s_.image.geometry;
  const uint64_t cs = s_.cluster_size();
  // Snapshots usually share L2 tables with the active image and with each other: the table
  // just read is still in the buffer (in-walk repairs write through it).
  if (l2_offset != s_.l2_buffered) {
    s_.l2_buffered = UINT64_MAX;
    if (!s_.io->Read(l2_offset, cs, s_.l2)) {
      Stop(FindingKind::kL2ReadError);
      return;
    }
    s_.l2_buffered = l2_offset;
  }
  uint64_t next_contiguous = 0;
  const uint32_t x = g.compressed_offset_bits;
  for (uint64_t j = 0; j < g.l2_entries; ++j) {
    uint64_t entry = base::LoadBe64(s_.l2 + j * g.l2_entry_bytes);
    const uint64_t bitmap = g.extended_l2 ? base::LoadBe64(s_.l2 + j * g.l2_entry_bytes + 8) : 0;
    const bool compressed = (entry & qcow2::kCompressedFlag) != 0;
    if (!compressed && (entry & kL2StandardReservedMask) != 0) {
      Report(FindingKind::kL2ReservedBits, entry);
      Corruption();
    }
    if (compressed) {
      const uint64_t coffset = entry & ((1ull << x) - 1);
      if ((entry & qcow2::kCopiedFlag) != 0) {
        Report(FindingKind::kCompressedCopied, coffset);
        entry &= ~qcow2::kCopiedFlag;
        Corruption();
      }
      if (bitmap != 0) {
        Report(FindingKind::kCompressedWithBitmap, j, entry);
        Corruption();
        continue;
      }
      const uint64_t sectors = ((entry >> x) & ((1ull << (g.cluster_bits - 8)) - 1)) + 1;
      Inc(coffset, sectors * 512 - (coffset & 511));
      if (frag_info && primary_) {
        ++s_.counts.allocated_clusters;
        ++s_.counts.compressed_clusters;
        ++s_.counts.fragmented_clusters;
      }
      continue;
    }
    const uint64_t offset = entry & qcow2::kOffsetMask;
    const bool zero_flag = !g.extended_l2 && (entry & qcow2::kZeroFlag) != 0;
    if (offset == 0) {
      // Plain zero or unallocated.
      if (!zero_flag && (bitmap & kL2BitmapAllAlloc) != 0) {
        Report(FindingKind::kUnallocatedWithBitmap);
        Corruption();
      }
      continue;
    }
    if (prescan_l2_) PrescanCopied(entry, offset);
    if (((bitmap >> 32) & bitmap) != 0) {
      Corruption();
      Report(FindingKind::kSubclusterBitmapCorrupt, offset);
    }
    if ((offset & (cs - 1)) != 0) {
      Corruption();
      const bool contains_data = g.extended_l2 ? (bitmap & kL2BitmapAllAlloc) != 0 : !zero_flag;
      if (!contains_data) {
        const bool repairing = (fix_ & kFixErrors) != 0 && primary_;
        if (primary_) {
          s_.sink->Emit(FindingKind::kPreallocUnaligned, offset, repairing ? 1 : 0);
        }
        if (repairing && FixUnalignedPrealloc(l2_offset, j)) continue;
        if (stopped()) return;
      } else {
        Report(FindingKind::kDataUnaligned, offset);
      }
    }
    if (frag_info && primary_) {
      ++s_.counts.allocated_clusters;
      if (next_contiguous != 0 && offset != next_contiguous) ++s_.counts.fragmented_clusters;
      next_contiguous = offset + cs;
    }
    Inc(offset, cs);
  }
}

void Walk::PrescanCopied(uint64_t entry, uint64_t offset) {
  if (!primary_ || !s_.copied_prescan || s_.copied_mismatch_possible) return;
  uint64_t refcount = 0;
  if (s_.stored.Get(offset >> s_.cluster_bits(), &refcount) != StoredRefcounts::Lookup::kOk ||
      (refcount == 1) != ((entry & qcow2::kCopiedFlag) != 0)) {
    s_.copied_mismatch_possible = true;
  }
}

void Walk::CheckSnapshots() {
  SnapshotReader reader(*s_.io, s_.image);
  SnapshotEntry entry;
  while (reader.Next(&entry)) {
    abi::CheckSnapshotFinding f{};
    f.magic = abi::kCheckSnapshotFindingMagic;
    if ((entry.l1_offset & (s_.cluster_size() - 1)) != 0) {
      f.kind = static_cast<uint32_t>(abi::SnapshotFindingKind::kL1Unaligned);
      f.value = entry.l1_offset;
    } else if (entry.l1_entries > qcow2::kMaxL1Bytes / 8) {
      f.kind = static_cast<uint32_t>(abi::SnapshotFindingKind::kL1TooLarge);
      f.value = entry.l1_entries;
    } else {
      CheckL1(entry.l1_offset, entry.l1_entries, /*frag_info=*/false);
      if (stopped()) return;
      continue;
    }
    f.id_len = entry.id_len;
    f.name_len = entry.name_len;
    __builtin_memcpy(f.id, entry.id, sizeof f.id);
    __builtin_memcpy(f.name, entry.name, sizeof f.name);
    if (primary_) s_.sink->EmitSnapshot(f);
    Corruption();
  }
  if (reader.io_failed()) s_.io_failed = true;
  Inc(s_.image.snapshots_offset, reader.table_bytes());
}

void Walk::CheckBitmapTable(uint64_t offset, uint64_t entries) {
  Inc(offset, entries * 8);
  const uint64_t cs = s_.cluster_size();
  const uint64_t per_chunk = cs / 8;
  for (uint64_t first = 0; first < entries; first += per_chunk) {
    const uint64_t n = entries - first < per_chunk ? entries - first : per_chunk;
    if (!ReadChunk(offset + first * 8, n * 8)) return;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t e = base::LoadBe64(s_.chunk + i * 8);
      const uint64_t data = e & kBitmapEntryOffsetMask;
      if ((e & kBitmapEntryReservedMask) != 0 || (data & (cs - 1)) != 0 ||
          ((e & kBitmapEntryAllOnes) != 0 && data != 0)) {
        Corruption();
        continue;
      }
      if (data != 0) Inc(data, cs);
    }
  }
}

// qemu's qcow2_check_bitmaps_refcounts: the directory, each bitmap table and its clusters.
// A directory qemu could not load fails the check (EINVAL) after counting one corruption.
void Walk::CheckBitmaps() {
  const Qcow2Image& im = s_.image;
  if (!im.has_bitmaps) return;
  Inc(im.bitmap_directory_offset, im.bitmap_directory_bytes);
  const uint64_t cs = s_.cluster_size();
  if (im.bitmap_directory_bytes > kMaxBitmapDirectoryBytes ||
      (im.bitmap_directory_offset & (cs - 1)) != 0) {
    Corruption();
    s_.failure = abi::CheckFailure::kInvalidArgument;
    return;
  }
  uint64_t at = 0;
  for (uint32_t i = 0; i < im.bitmap_count; ++i) {
    uint8_t raw[kBitmapDirEntryBytes];
    if (at + kBitmapDirEntryBytes > im.bitmap_directory_bytes ||
        !s_.io->Read(im.bitmap_directory_offset + at, sizeof raw, raw)) {
      Corruption();
      s_.failure = abi::CheckFailure::kInvalidArgument;
      return;
    }
    const base::ByteView v(raw, sizeof raw);
    uint64_t table_offset = 0;
    uint32_t table_entries = 0, extra = 0;
    uint16_t name_size = 0;
    v.Be64(0, &table_offset);
    v.Be32(8, &table_entries);
    v.Be16(18, &name_size);
    v.Be32(20, &extra);
    at = (at + kBitmapDirEntryBytes + extra + name_size + 7) & ~uint64_t{7};
    CheckBitmapTable(table_offset, table_entries);
  }
}

// qemu's check_refblocks: each refcount table entry, and the reference its block makes.
void Walk::CheckRefblocks() {
  const uint64_t cs = s_.cluster_size();
  for (uint64_t i = 0; i < s_.image.reftable_entries; ++i) {
    uint64_t entry = 0;
    if (!s_.stored.TableEntry(i, &entry)) {
      s_.io_failed = true;
      return;
    }
    const uint64_t offset = entry & qcow2::kRefcountTableOffsetMask;
    const uint64_t cluster = offset >> s_.cluster_bits();
    if ((entry & kReftableReservedMask) != 0) {
      Report(FindingKind::kReftableReservedBits, i);
      Corruption();
      s_.rebuild = true;
      continue;
    }
    if ((offset & (cs - 1)) != 0) {
      Report(FindingKind::kRefblockUnaligned, i);
      Corruption();
      s_.rebuild = true;
      continue;
    }
    if (cluster >= domain_) {
      const bool repairing = (fix_ & kFixErrors) != 0;
      if (primary_) s_.sink->Emit(FindingKind::kRefblockOutsideImage, i, repairing ? 1 : 0);
      Corruption();
      if (!primary_) {
        if (offset <= INT64_MAX - cs && offset + cs <= s_.walk_grown_size) Grown(offset);
        continue;
      }
      if (repairing) {
        // Grow the file to hold the block (qemu truncates it up to the block's end).
        s_.l2_buffered = UINT64_MAX;
        __builtin_memset(s_.l2, 0, cs);
        if (offset > INT64_MAX - cs) {
          s_.rebuild = true;
          s_.sink->Emit(FindingKind::kResizeFailed, kResizeInvalid);
        } else if (s_.io->Write(offset, cs, s_.l2)) {
          --s_.counts.corruptions;
          ++s_.counts.corruptions_fixed;
          s_.walk_grown_size = offset + cs;
          Grown(offset);
          continue;
        } else {
          // The host refuses growth past its bound (and the count covers no more), as a file
          // system refuses a file too large.
          s_.rebuild = true;
          s_.sink->Emit(FindingKind::kResizeFailed, kResizeTooLarge);
        }
      }
      continue;
    }
    if (offset == 0) continue;
    Inc(offset, cs);
    Event();
    if (s_.window.Contains(cluster) && s_.window.Get(cluster) != 1) {
      Order(2 * events_);
      if (!silent_) s_.sink->Emit(FindingKind::kRefblockRefcount, i, s_.window.Get(cluster));
      Order(2 * events_ + 1);
      ++s_.counts.corruptions;
      s_.rebuild = true;
    }
  }
}

void Walk::Grown(uint64_t offset) {
  file_len_ = offset + s_.cluster_size();
  domain_ = ClustersFor(s_, file_len_);
  if (domain_ > s_.domain_end) s_.domain_end = domain_;  // the windows go on to the new end
  Inc(offset, s_.cluster_size());
  Event();
}

void Walk::Run() {
  const Qcow2Image& im = s_.image;
  Inc(0, s_.cluster_size());
  CheckL1(im.l1_offset, im.l1_entries, /*frag_info=*/true);
  if (stopped()) return;
  CheckSnapshots();
  if (stopped()) return;
  Inc(im.reftable_offset, im.reftable_entries * 8);
  CheckBitmaps();
  CheckRefblocks();
}

}  // namespace

void CalculateRefcounts(CheckState& s, WalkMode mode, uint32_t fix) {
  if (s.domain_end < ClustersFor(s, s.io->Size())) s.domain_end = ClustersFor(s, s.io->Size());
  Walk(s, mode, fix).Run();
}

}  // namespace instar::check
