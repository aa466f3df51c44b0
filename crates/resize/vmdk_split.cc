#include "crates/resize/vmdk_split.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::resize {

using base::Fail;
using image_write::Emit;
using image_write::Phase;
using image_write::PlanError;
using image_write::StepKind;

namespace {

constexpr uint64_t kSector = 512;
// qemu-img create's choices for a sparse extent.
constexpr uint64_t kGrainSectors = 128;
constexpr uint32_t kGtesPerGt = 512;
constexpr uint64_t kDescriptorOffset = 1;
constexpr uint64_t kDescriptorSectors = 20;
constexpr uint32_t kFlagNewlineDetection = 1u << 0;

}  // namespace

bool PlanSplitGrowth(uint64_t old_total, uint64_t new_total, uint64_t last,
                     uint32_t max_new_extents, SplitGrowth* out) {
  const uint64_t growth = new_total - old_total;
  const uint64_t room = last < kSplitExtentSectors ? kSplitExtentSectors - last : 0;
  const uint64_t into_last = growth < room ? growth : room;
  const uint64_t rest = growth - into_last;
  const uint64_t count = base::DivRoundUp(rest, kSplitExtentSectors);
  if (count > max_new_extents) return false;
  out->last_extent_sectors = last + into_last;
  out->new_extents = static_cast<uint32_t>(count);
  out->final_extent_sectors = count == 0 ? 0 : rest - (count - 1) * kSplitExtentSectors;
  return true;
}

uint64_t NewExtentSectors(const SplitGrowth& growth, uint32_t index) {
  return index + 1 == growth.new_extents ? growth.final_extent_sectors : kSplitExtentSectors;
}

base::Result<uint64_t, PlanError> PlanNewSparseExtent(uint64_t capacity, base::Arena& arena,
                                                      const image_write::StepSink& sink) {
  if (capacity == 0 || capacity > kSplitExtentSectors) return Fail(PlanError::kFormatCannotResize);
  const uint64_t tables = base::DivRoundUp(capacity, kGrainSectors * kGtesPerGt);
  const uint64_t dir_sectors = base::DivRoundUp(tables * 4, kSector);
  const uint64_t table_sectors = kGtesPerGt * 4 / kSector;
  const uint64_t rgd = kDescriptorOffset + kDescriptorSectors;
  const uint64_t gd = rgd + dir_sectors + tables * table_sectors;
  const uint64_t end = gd + dir_sectors + tables * table_sectors;
  const uint64_t first_grain = base::DivRoundUp(end, kGrainSectors) * kGrainSectors;

  uint8_t* header = arena.Allocate(kSector, kSector);
  uint8_t* dirs = arena.Allocate(2 * dir_sectors * kSector, kSector);
  if (header == nullptr || dirs == nullptr) return Fail(PlanError::kScratchTooSmall);
  __builtin_memset(header, 0, kSector);
  __builtin_memset(dirs, 0, 2 * dir_sectors * kSector);
  base::StoreLe32(header + 0, vmdk::kSparseMagic);
  base::StoreLe32(header + 4, 1);  // version
  base::StoreLe32(header + 8, kFlagNewlineDetection | vmdk::kFlagRedundantGrainTable);
  base::StoreLe64(header + 12, capacity);
  base::StoreLe64(header + 20, kGrainSectors);
  base::StoreLe64(header + 28, kDescriptorOffset);
  base::StoreLe64(header + 36, kDescriptorSectors);
  base::StoreLe32(header + 44, kGtesPerGt);
  base::StoreLe64(header + 48, rgd);
  base::StoreLe64(header + 56, gd);
  base::StoreLe64(header + 64, first_grain);
  // uncleanShutdown 0, then the newline-detection bytes "\n \r\n".
  header[73] = '\n';
  header[74] = ' ';
  header[75] = '\r';
  header[76] = '\n';
  uint8_t* redundant = dirs;
  uint8_t* primary = dirs + dir_sectors * kSector;
  for (uint64_t t = 0; t < tables; ++t) {
    base::StoreLe32(redundant + 4 * t,
                    static_cast<uint32_t>(rgd + dir_sectors + t * table_sectors));
    base::StoreLe32(primary + 4 * t, static_cast<uint32_t>(gd + dir_sectors + t * table_sectors));
  }
  // Zeros to the first grain, the directories, the header last (nothing names the file until
  // the descriptor does, so the order only keeps a half-written file from looking whole).
  if (!Emit(sink, StepKind::kZero, Phase::kNewMetadata, kSector,
            first_grain * kSector - kSector) ||
      !Emit(sink, StepKind::kWrite, Phase::kNewMetadata, rgd * kSector, dir_sectors * kSector,
            redundant) ||
      !Emit(sink, StepKind::kWrite, Phase::kNewMetadata, gd * kSector, dir_sectors * kSector,
            primary) ||
      !Emit(sink, StepKind::kWrite, Phase::kNewMetadata, 0, kSector, header)) {
    return Fail(PlanError::kIoError);
  }
  return first_grain * kSector;
}

}  // namespace instar::resize
