#include "crates/check/qcow2_check.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/check/internal/check_state.h"
#include "crates/check/qcow2_image.h"
#include "crates/check/reference_walk.h"
#include "crates/check/refcount_compare.h"
#include "crates/check/refcount_rebuild.h"
#include "crates/check/snapshot_table.h"

namespace instar::check {
namespace {

using abi::CheckError;
using abi::FindingKind;
using base::Fail;

constexpr uint64_t kProbeBytes = 4096;

struct RunOutcome {
  CheckCounts counts;
  uint64_t image_end_offset = 0;
  uint64_t passes = 0;
  abi::CheckFailure failure = abi::CheckFailure::kNone;
};

CheckCounts Plus(CheckCounts a, const CheckCounts& b) {
  a.corruptions += b.corruptions;
  a.leaks += b.leaks;
  a.check_errors += b.check_errors;
  a.corruptions_fixed += b.corruptions_fixed;
  a.leaks_fixed += b.leaks_fixed;
  return a;
}

class Checker {
 public:
  Checker(CheckState& s, base::Arena& arena, const CheckOptions& options)
      : s_(s), arena_(arena), options_(options) {}

  // Sizes the window from what the arena has left. `need_single`: one window must hold the
  // whole count with room for a rebuild. `repair_errors`: room is kept for a rebuild's table.
  base::Status<CheckError> PlanWindow(bool need_single, bool repair_errors);
  // One qcow2_co_check: the refcount check, OFLAG_COPIED, and marking the image clean.
  RunOutcome Run(uint32_t fix);

 private:
  void SetWindow(uint64_t base) {
    s_.window = RefcountWindow(window_bytes_, window_byte_size_, s_.image.refcount_order(), base,
                               window_capacity_);
    s_.window.Clear();
  }
  // qemu's calculate_refcounts then compare_refcounts(`compare_fix`), window by window: each
  // window's walk, then its comparison. The walk's counts add to *walked, the comparison's to
  // *compared; the order keys put every walk finding before every comparison line, and the
  // later windows' walk findings in walk order among the first window's. False when the walk
  // failed.
  bool CountAndCompare(uint32_t walk_fix, uint32_t compare_fix, uint64_t* highest,
                       CheckCounts* walked, CheckCounts* compared, RunOutcome* out);
  void CheckRefcounts(uint32_t fix, uint64_t* highest, RunOutcome* out);
  void RebuildAndRecount(uint32_t fix, uint64_t* highest, RunOutcome* out);
  void MarkCleanAndConsistent();

  CheckState& s_;
  base::Arena& arena_;
  const CheckOptions& options_;
  uint8_t* window_bytes_ = nullptr;
  uint64_t window_byte_size_ = 0;
  uint64_t window_capacity_ = 0;
  uint64_t rebuild_table_entries_ = 0;  // what a rebuild's table may need
};

base::Status<CheckError> Checker::PlanWindow(bool need_single, bool repair_errors) {
  const uint64_t cs = s_.cluster_size();
  const uint32_t bits = 1u << s_.image.refcount_order();
  const uint64_t per_block = s_.image.geometry.refcount_entries;
  // The file's clusters, one just past its end, and for a repair room for a rebuilt
  // structure, which can grow the file by the host's growth limit. A single window holds it
  // all in whole refcount blocks; a rebuild also needs its new table and a queue as large.
  const uint64_t file_clusters = ClustersFor(s_, s_.io->Size());
  const uint64_t repair_clusters =
      file_clusters + 1 + base::DivRoundUp(abi::RepairGrowthLimit(s_.io->Size()), cs) + 16;
  uint64_t wanted = file_clusters + 1;
  uint64_t table_reserve = 0;
  rebuild_table_entries_ = 0;
  if (repair_errors) {
    const uint64_t per_cluster = cs / 8;
    rebuild_table_entries_ =
        base::DivRoundUp(base::DivRoundUp(repair_clusters, per_block), per_cluster) * per_cluster;
    table_reserve = 2 * rebuild_table_entries_ * 8 + 2 * cs;
  }
  if (need_single) wanted = base::DivRoundUp(repair_clusters, per_block) * per_block;
  const uint64_t remaining = arena_.remaining();
  const uint64_t available = remaining > table_reserve + 64 ? remaining - table_reserve - 64 : 0;
  uint64_t capacity = need_single ? (available / cs) * (cs * 8 / bits) : available * 8 / bits;
  if (options_.max_clusters_per_pass != 0 && capacity > options_.max_clusters_per_pass) {
    capacity = options_.max_clusters_per_pass;
  }
  // Windows start on whole bytes of the count, so a rebuild can write them as block slices.
  const uint64_t align = bits < 8 ? 8 / bits : 1;
  if (capacity != 0) capacity = capacity < align ? align : capacity / align * align;
  wanted = base::DivRoundUp(wanted, align) * align;
  if (capacity > wanted) capacity = wanted;
  if (capacity == 0 || (need_single && capacity < wanted)) {
    return Fail(CheckError::kScratchTooSmall, wanted);
  }
  window_capacity_ = capacity;
  window_byte_size_ = need_single ? base::DivRoundUp(capacity * bits, 8 * cs) * cs
                                  : base::DivRoundUp(capacity * bits, 64) * 8;
  window_bytes_ = arena_.Allocate(window_byte_size_, 512);
  if (window_bytes_ == nullptr) return Fail(CheckError::kScratchTooSmall, wanted);
  return {};
}

bool Checker::CountAndCompare(uint32_t walk_fix, uint32_t compare_fix, uint64_t* highest,
                              CheckCounts* walked, CheckCounts* compared, RunOutcome* out) {
  s_.NextPhase();
  s_.walk_phase = s_.phase;
  s_.NextPhase();
  const uint64_t compare_order = s_.sink->order;
  bool first = true;
  uint64_t base = 0;
  do {
    SetWindow(base);
    s_.counts = *walked;
    CalculateRefcounts(s_, first ? WalkMode::kPrimary : WalkMode::kLaterWindow, walk_fix);
    *walked = s_.counts;
    if (s_.failure != abi::CheckFailure::kNone) {
      s_.counts = Plus(*walked, *compared);
      return false;
    }
    s_.sink->order = compare_order;
    s_.counts = *compared;
    CompareRefcounts(s_, compare_fix, highest);
    *compared = s_.counts;
    ++out->passes;
    first = false;
    base = s_.window.end();
  } while (base < s_.domain_end);
  s_.counts = Plus(*walked, *compared);
  s_.NextPhase();
  return true;
}

// qemu's qcow2_check_refcounts.
void Checker::CheckRefcounts(uint32_t fix, uint64_t* highest, RunOutcome* out) {
  s_.copied_prescan = fix == 0;
  s_.copied_mismatch_possible = false;
  CheckCounts walked = s_.counts, compared;
  if (!CountAndCompare(fix, 0, highest, &walked, &compared, out)) return;
  const bool one_window = out->passes == 1;

  if (s_.rebuild && (fix & kFixErrors) != 0) {
    RebuildAndRecount(fix, highest, out);
    if (s_.failure != abi::CheckFailure::kNone) return;
  } else if (fix != 0) {
    if (s_.rebuild) {
      s_.sink->Emit(FindingKind::kNeedRebuild);
      ++s_.counts.check_errors;
      s_.failure = abi::CheckFailure::kIoError;
      return;
    }
    if (s_.counts.leaks != 0 || s_.counts.corruptions != 0) {
      s_.counts = walked;
      *highest = 0;
      if (one_window) {
        CompareRefcounts(s_, fix, highest);
      } else {
        for (uint64_t base = 0; base < s_.domain_end; base = s_.window.end()) {
          SetWindow(base);
          const CheckCounts keep = s_.counts;
          const uint64_t order = s_.sink->order;
          CalculateRefcounts(s_, WalkMode::kSilent, 0);
          s_.counts = keep;
          s_.sink->order = order;
          CompareRefcounts(s_, fix, highest);
          ++out->passes;
        }
      }
    }
  }
  s_.NextPhase();
  if (!s_.copied_prescan || s_.copied_mismatch_possible || s_.io_failed) {
    CheckCopiedFlags(s_, fix);
  }
}

// qemu: rebuild, recount from scratch, repair the leaks the old structure left, and count
// what the rebuild fixed. `fix` has kFixLeaks with kFixErrors (qemu-img's -r all).
void Checker::RebuildAndRecount(uint32_t fix, uint64_t* highest, RunOutcome* out) {
  s_.sink->Emit(FindingKind::kRebuilding);
  const CheckCounts old = s_.counts;
  switch (RebuildRefcountStructure(s_, arena_, rebuild_table_entries_)) {
    case RebuildOutcome::kRebuilt: break;
    case RebuildOutcome::kNoRoom:
      s_.sink->Emit(FindingKind::kRebuildTooLarge, s_.domain_end);
      ++s_.counts.check_errors;
      s_.failure = abi::CheckFailure::kIoError;
      return;
    case RebuildOutcome::kFailed: s_.failure = abi::CheckFailure::kIoError; return;
  }
  s_.counts.corruptions = 0;
  s_.counts.leaks = 0;
  s_.rebuild = false;
  CheckCounts walked = s_.counts, fresh;
  *highest = 0;
  if (!CountAndCompare(0, fix & kFixLeaks, highest, &walked, &fresh, out)) return;
  if (s_.rebuild) s_.sink->Emit(FindingKind::kRebuiltStillBroken);
  s_.counts = walked;
  if (s_.counts.corruptions < old.corruptions) {
    s_.counts.corruptions_fixed += old.corruptions - s_.counts.corruptions;
  }
  if (s_.counts.leaks < old.leaks) s_.counts.leaks_fixed += old.leaks - s_.counts.leaks;
  s_.counts.leaks += fresh.leaks;
}

// qemu's qcow2_mark_clean and qcow2_mark_consistent: the dirty and corrupt bits go once a
// repair leaves no corruption. Only the feature field changes.
void Checker::MarkCleanAndConsistent() {
  const uint64_t clear = qcow2::kIncompatDirty | qcow2::kIncompatCorrupt;
  if (s_.image.header.version < 3 || (s_.image.header.incompatible_features & clear) == 0) return;
  const uint64_t features = s_.image.header.incompatible_features & ~clear;
  uint8_t field[8];
  base::StoreBe64(field, features);
  if (!s_.io->Write(72, sizeof field, field)) {
    s_.failure = abi::CheckFailure::kIoError;
    return;
  }
  s_.image.header.incompatible_features = features;
}

RunOutcome Checker::Run(uint32_t fix) {
  RunOutcome out;
  s_.counts = CheckCounts();
  s_.domain_end = 0;
  s_.rebuild = false;
  s_.failure = abi::CheckFailure::kNone;
  s_.l2_buffered = UINT64_MAX;
  s_.NextPhase();
  uint64_t highest = 0;
  // qemu's qcow2_co_check_locked: the snapshot table, the refcounts, then the snapshot table's
  // repair, each stage's counts kept apart until the end.
  if (!ReadSnapshotTable(s_, fix)) {
    out.counts = s_.snapshot_counts;
    out.failure = s_.failure;
    return out;
  }
  CheckRefcounts(fix, &highest, &out);
  s_.NextPhase();
  if (s_.io_failed && s_.failure == abi::CheckFailure::kNone) {
    s_.failure = abi::CheckFailure::kIoError;
  }
  if (s_.failure == abi::CheckFailure::kNone) FixSnapshotTable(s_, fix);
  s_.counts = Plus(s_.counts, s_.snapshot_counts);
  if (s_.failure == abi::CheckFailure::kNone && fix != 0 && s_.counts.check_errors == 0 &&
      s_.counts.corruptions == 0) {
    MarkCleanAndConsistent();
  }
  out.counts = s_.counts;
  out.image_end_offset = (highest + 1) << s_.cluster_bits();
  out.failure = s_.failure;
  return out;
}

// qemu drops a bitmaps extension whose bitmaps it considers inconsistent when it opens the
// image for writing: the later extension records move up over it, the backing file name (which
// follows the extension area) stays where it is. `head` holds the first cluster.
bool DropBitmapsExtension(const ImageAccess& io, uint8_t* head, uint64_t head_bytes,
                          const qcow2::Header& h) {
  uint64_t area_end = head_bytes;
  const uint64_t backing = base::LoadBe64(head + 8);
  if (backing != 0 && backing < area_end) area_end = backing;
  const uint64_t record = h.bitmaps_extension.offset - 8;
  const uint64_t record_bytes = 8 + ((uint64_t{h.bitmaps_extension.length} + 7) & ~uint64_t{7});
  // The end of the records: just past the end marker, or the end of the area.
  uint64_t end = area_end;
  for (uint64_t off = h.header_length; off + 8 <= area_end;) {
    const uint32_t type = base::LoadBe32(head + off);
    const uint64_t length = base::LoadBe32(head + off + 4);
    if (type == qcow2::kExtEnd) {
      end = off + 8;
      break;
    }
    off += 8 + ((length + 7) & ~uint64_t{7});
  }
  if (record + record_bytes > end) return false;
  __builtin_memmove(head + record, head + record + record_bytes, end - record - record_bytes);
  __builtin_memset(head + end - record_bytes, 0, record_bytes);
  return io.Write(record, end - record, head + record);
}

void Fill(const RunOutcome& run, abi::CheckResult* r) {
  r->failure = static_cast<uint32_t>(run.failure);
  r->check_errors = static_cast<uint64_t>(run.counts.check_errors);
  r->corruptions = static_cast<uint64_t>(run.counts.corruptions);
  r->leaks = static_cast<uint64_t>(run.counts.leaks);
  r->corruptions_fixed = static_cast<uint64_t>(run.counts.corruptions_fixed);
  r->leaks_fixed = static_cast<uint64_t>(run.counts.leaks_fixed);
  r->image_end_offset = run.image_end_offset;
  r->allocated_clusters = run.counts.allocated_clusters;
  r->fragmented_clusters = run.counts.fragmented_clusters;
  r->compressed_clusters = run.counts.compressed_clusters;
  r->passes += run.passes;
}

}  // namespace

base::Status<CheckError> CheckQcow2(const ImageAccess& io, const FindingSink& sink,
                                    base::Arena& arena, const CheckOptions& options,
                                    abi::CheckResult* result) {
  auto* s = arena.New<CheckState>();
  if (s == nullptr) return Fail(CheckError::kScratchTooSmall);
  s->io = &io;
  s->sink_copy = sink;
  s->sink = &s->sink_copy;
  s->writable = options.repair != abi::CheckRepair::kNone;
  // The header and its extensions live in the first cluster; its size is in the header. Both
  // reads are zero-filled past the end of a short file, as qemu's are.
  uint8_t probe[kProbeBytes];
  const uint64_t file_size = io.Size();
  if (!io.Read(0, kProbeBytes, probe)) return Fail(CheckError::kIoError);
  auto parsed = qcow2::ParseHeader(base::ByteView(probe, kProbeBytes), qcow2::OpenMode::kCheck);
  if (!parsed.ok()) return OpenQcow2(base::ByteView(probe, kProbeBytes), file_size).error();
  const uint64_t head_bytes = parsed.value().cluster_size;
  uint8_t* head = arena.Allocate(parsed.value().cluster_size, 512);
  if (head == nullptr) return Fail(CheckError::kScratchTooSmall);
  if (!io.Read(0, head_bytes, head)) return Fail(CheckError::kIoError);
  auto opened = OpenQcow2(base::ByteView(head, head_bytes), file_size);
  if (!opened.ok()) return opened.error();
  s->image = opened.value();
  if (s->image.header.backing_file.length != 0 && !options.backing_checked) {
    return Fail(CheckError::kHasBackingFile);
  }
  if (s->image.bitmaps_inconsistent) {
    s->sink->Emit(FindingKind::kBitmapsInconsistent);
    if (s->writable && !DropBitmapsExtension(io, head, head_bytes, s->image.header)) {
      return Fail(CheckError::kIoError);
    }
  }
  s->original_reftable_offset = s->image.reftable_offset;
  s->original_reftable_entries = s->image.reftable_entries;
  const uint64_t cs = s->cluster_size();
  s->chunk = head;  // the header is parsed: its cluster becomes the table-chunk buffer
  s->l2 = arena.Allocate(cs, 512);
  if (s->chunk == nullptr || s->l2 == nullptr || !s->stored.Init(io, s->image, arena)) {
    return Fail(CheckError::kScratchTooSmall);
  }
  Checker checker(*s, arena, options);
  uint32_t fix = 0;
  if (options.repair == abi::CheckRepair::kLeaks) fix = kFixLeaks;
  if (options.repair == abi::CheckRepair::kAll) fix = kFixLeaks | kFixErrors;
  // A repair of errors may need a rebuild, which is quickest with the whole count (and room
  // for what it adds) in one window; when that does not fit, everything runs in passes.
  const bool repair_errors = (fix & kFixErrors) != 0;
  if (!repair_errors || !checker.PlanWindow(/*need_single=*/true, repair_errors).ok()) {
    TRY_STATUS(checker.PlanWindow(/*need_single=*/false, repair_errors));
  }

  result->magic = abi::kCheckResultMagic;
  result->format = static_cast<uint32_t>(abi::ImageFormat::kQcow2);
  // qemu counts whole sectors of the virtual size (its total_sectors drops a partial one).
  result->total_clusters = base::DivRoundUp(s->image.header.size / 512 * 512, cs);
  const RunOutcome first = checker.Run(fix);
  Fill(first, result);
  if (first.failure == abi::CheckFailure::kNone &&
      (first.counts.corruptions_fixed != 0 || first.counts.leaks_fixed != 0)) {
    // qemu-img checks the repaired image again and reports that, with the first run's fixes.
    RunOutcome second = checker.Run(0);
    second.counts.corruptions_fixed = first.counts.corruptions_fixed;
    second.counts.leaks_fixed = first.counts.leaks_fixed;
    Fill(second, result);
  }
  return {};
}

}  // namespace instar::check
