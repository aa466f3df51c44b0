#include "crates/check/refcount_compare.h"

#include "crates/base/bytes.h"
#include "crates/base/endian.h"
#include "crates/check/corruption_event.h"
#include "crates/check/metadata_overlap.h"
#include "crates/qcow2/entries.h"

namespace instar::check {
namespace {

using abi::FindingKind;

// qemu's overlap check before a repair rewrites part of the structure `own`: on an overlap the
// corruption event, then the check stops.
bool WriteWouldOverlap(CheckState& s, uint64_t offset, uint64_t size, abi::MetadataKind own) {
  abi::MetadataKind overlapped;
  if (!OverlapsMetadata(s, offset, size, &overlapped, OverlapBit(own))) return false;
  SignalCorruption(s, FindingKind::kOverlapCorruptEvent, static_cast<uint64_t>(overlapped), 0);
  ++s.counts.check_errors;
  s.failure = abi::CheckFailure::kIoError;
  return true;
}

// A stored refcount qemu could not read reports its corruption event once (qemu suppresses
// the later ones); true when the refcount is usable.
bool StoredRefcount(CheckState& s, uint64_t cluster, uint64_t* refcount) {
  uint64_t block = 0, index = 0;
  switch (s.stored.Get(cluster, refcount, &block, &index)) {
    case StoredRefcounts::Lookup::kOk: return true;
    case StoredRefcounts::Lookup::kUnalignedBlock:
      SignalCorruption(s, FindingKind::kRefblockOffsetCorruptEvent, block, index);
      return false;
    case StoredRefcounts::Lookup::kIoError: return false;  // qemu: EIO for this cluster
  }
  return false;
}

}  // namespace

void DiscardCluster(CheckState& s, uint64_t cluster) {
  const uint64_t offset = cluster << s.cluster_bits();
  const uint64_t size = s.io->Size();
  if (offset >= size) return;
  const uint64_t length = size - offset < s.cluster_size() ? size - offset : s.cluster_size();
  __builtin_memset(s.chunk, 0, length);
  if (!s.io->Write(offset, length, s.chunk)) s.io_failed = true;
}

// Clusters [first, end) of one refcount block, when their computed counts equal the stored
// ones byte for byte (the common, clean case): true, with `*highest` moved to the last
// cluster either counts as used. False leaves the range to the cluster-by-cluster compare
// (a mismatch, a block qemu cannot read, or counts not starting on a byte).
bool RangeMatchesStored(CheckState& s, uint64_t first, uint64_t end, uint64_t* highest) {
  const uint32_t order = s.image.refcount_order();
  const uint64_t bits = uint64_t{1} << order;
  const uint64_t window_bit = (first - s.window.base()) * bits;
  const uint64_t block_bit = (first % s.image.geometry.refcount_entries) * bits;
  const uint64_t length_bits = (end - first) * bits;
  if (window_bit % 8 != 0 || block_bit % 8 != 0 || length_bits % 8 != 0) return false;
  const uint8_t* block = nullptr;
  if (s.stored.Block(first, &block) != StoredRefcounts::Lookup::kOk) return false;
  const uint8_t* computed = s.window.bytes() + window_bit / 8;
  const uint64_t length = length_bits / 8;
  if (block != nullptr ? !base::BytesEqual(computed, block + block_bit / 8, length)
                       : !base::AllZero(computed, length)) {
    return false;
  }
  uint64_t last_byte = length;
  while (last_byte > 0 && computed[last_byte - 1] == 0) --last_byte;
  if (last_byte == 0) return true;
  // The last non-zero refcount lies in byte last_byte - 1.
  uint64_t index = ((last_byte * 8) >> order) - 1;
  while (qcow2::GetRefcount(computed, order, index) == 0) --index;
  *highest = first + index;
  return true;
}

void CompareRefcounts(CheckState& s, uint32_t fix, uint64_t* highest) {
  const uint64_t end = s.window.end() < s.domain_end ? s.window.end() : s.domain_end;
  const uint64_t per_block = s.image.geometry.refcount_entries;
  uint64_t span_end = s.window.base();
  for (uint64_t i = s.window.base(); i < end; ++i) {
    if (i == span_end) {
      span_end = (i / per_block + 1) * per_block < end ? (i / per_block + 1) * per_block : end;
      if (RangeMatchesStored(s, i, span_end, highest)) {
        i = span_end - 1;
        continue;
      }
    }
    uint64_t stored = 0;
    if (!StoredRefcount(s, i, &stored)) {
      s.sink->Emit(FindingKind::kCantGetRefcount, i);
      ++s.counts.check_errors;
      continue;
    }
    const uint64_t computed = s.window.Get(i);
    if (stored > 0 || computed > 0) *highest = i;
    if (stored == computed) continue;
    int64_t* fixed = nullptr;
    if (stored == 0) {
      s.rebuild = true;
    } else if (stored > computed && (fix & kFixLeaks) != 0) {
      fixed = &s.counts.leaks_fixed;
    } else if (stored < computed && (fix & kFixErrors) != 0) {
      fixed = &s.counts.corruptions_fixed;
    }
    const FindingKind kind = fixed != nullptr  ? FindingKind::kRepairingCluster
                             : stored < computed ? FindingKind::kClusterRefcountError
                                                 : FindingKind::kLeakedCluster;
    s.sink->Emit(kind, i, stored, computed);
    if (fixed != nullptr && s.stored.Set(i, computed)) {
      ++*fixed;
      if (computed == 0) DiscardCluster(s, i);
      continue;
    }
    if (stored < computed) {
      ++s.counts.corruptions;
    } else {
      ++s.counts.leaks;
    }
  }
  if (!s.stored.Flush()) s.io_failed = true;
}

void CheckCopiedFlags(CheckState& s, uint32_t fix) {
  const bool repair = (fix & kFixErrors) != 0 ||
                      ((fix & kFixLeaks) != 0 && s.counts.check_errors == 0 &&
                       s.counts.corruptions == 0 && s.counts.leaks == 0);
  const qcow2::Geometry& g = s.image.geometry;
  const uint64_t cs = s.cluster_size();
  const uint64_t per_chunk = cs / 8;
  const uint64_t entries = s.image.l1_entries;
  s.l2_buffered = UINT64_MAX;
  for (uint64_t first = 0; first < entries; first += per_chunk) {
    const uint64_t n = entries - first < per_chunk ? entries - first : per_chunk;
    if (!s.io->Read(s.image.l1_offset + first * 8, n * 8, s.chunk)) {
      s.io_failed = true;
      return;
    }
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t l1_entry = base::LoadBe64(s.chunk + i * 8);
      const uint64_t l2_offset = l1_entry & qcow2::kOffsetMask;
      if (l2_offset == 0) continue;
      uint64_t refcount = 0;
      if (!StoredRefcount(s, l2_offset >> s.cluster_bits(), &refcount)) continue;
      if ((refcount == 1) != ((l1_entry & qcow2::kCopiedFlag) != 0)) {
        ++s.counts.corruptions;
        s.sink->Emit(FindingKind::kCopiedL2Table, first + i, l1_entry, refcount,
                     repair ? abi::kFindingRepairing : 0);
        if (repair) {
          const uint64_t fixed = refcount == 1 ? l1_entry | qcow2::kCopiedFlag
                                               : l1_entry & ~qcow2::kCopiedFlag;
          base::StoreBe64(s.chunk + i * 8, fixed);
          if (WriteWouldOverlap(s, s.image.l1_offset + (first + i) * 8, 8,
                                abi::MetadataKind::kActiveL1)) {
            return;
          }
          if (!s.io->Write(s.image.l1_offset + (first + i) * 8, 8, s.chunk + i * 8)) {
            ++s.counts.check_errors;
            return;
          }
          --s.counts.corruptions;
          ++s.counts.corruptions_fixed;
        }
      }
      if (!s.io->Read(l2_offset, cs, s.l2)) {
        s.io_failed = true;
        return;
      }
      int64_t dirty = 0;
      for (uint64_t j = 0; j < g.l2_entries; ++j) {
        uint8_t* at = s.l2 + j * g.l2_entry_bytes;
        const uint64_t l2_entry = base::LoadBe64(at);
        if ((l2_entry & qcow2::kCompressedFlag) != 0) continue;
        const uint64_t data = l2_entry & qcow2::kOffsetMask;
        if (data == 0) continue;  // unallocated or plain zero
        if (!StoredRefcount(s, data >> s.cluster_bits(), &refcount)) continue;
        if ((refcount == 1) != ((l2_entry & qcow2::kCopiedFlag) != 0)) {
          ++s.counts.corruptions;
          s.sink->Emit(FindingKind::kCopiedDataCluster, l2_entry, refcount, 0,
                       repair ? abi::kFindingRepairing : 0);
          if (repair) {
            base::StoreBe64(at, refcount == 1 ? l2_entry | qcow2::kCopiedFlag
                                              : l2_entry & ~qcow2::kCopiedFlag);
            ++dirty;
          }
        }
      }
      if (dirty > 0) {
        if (WriteWouldOverlap(s, l2_offset, cs, abi::MetadataKind::kActiveL2)) {
          s.sink->Emit(FindingKind::kL2TableOverlap);
          return;
        }
        if (!s.io->Write(l2_offset, cs, s.l2)) {
          ++s.counts.check_errors;
          return;
        }
        s.counts.corruptions -= dirty;
        s.counts.corruptions_fixed += dirty;
      }
    }
  }
}

}  // namespace instar::check
