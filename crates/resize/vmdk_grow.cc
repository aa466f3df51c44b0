#include "crates/resize/vmdk_grow.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/resize/vmdk_text.h"

namespace instar::resize {

using image_write::Emit;
using image_write::Phase;
using image_write::StepKind;

namespace {

using base::Fail;

constexpr uint64_t kSector = 512;
constexpr uint32_t kFlagRedundantGd = 1u << 1;
// Header fields rewritten: capacity (12..19) through gdOffset (56..63).
constexpr uint64_t kCapacityOffset = 12;
constexpr uint64_t kRgdOffsetField = 48;
constexpr uint64_t kGdOffsetField = 56;

// One grain directory (primary or redundant) as the planner rewrites it.
struct Directory {
  uint64_t sector = 0;        // where it is now
  uint64_t new_sector = 0;    // where it will be (== sector when extended in place)
  uint64_t first_table = 0;   // sector of the first new grain table
  uint8_t* entries = nullptr; // every entry, old and new, little-endian
};

}  // namespace

bool IsMonolithicSparse(const VmdkImage& image) {
  const vmdk::Descriptor& d = *image.descriptor;
  if (d.extent_count != 1 || d.extents[0].type != vmdk::ExtentType::kSparse) return false;
  return CreateTypeIs(
      image.descriptor_text.Sub(d.keys.create_type.offset, d.keys.create_type.length),
      "monolithicSparse");
}

namespace {

// Grows one extent to `new_capacity` sectors; `descriptor` (when not null) is the embedded
// descriptor's new text, written just before the header.
base::Result<VmdkGrowSummary, PlanError> GrowExtent(const VmdkImage& image,
                                                    uint64_t new_capacity, ExtendBy extend,
                                                    const uint8_t* descriptor,
                                                    const ImageReader& reader,
                                                    base::Arena& arena, const StepSink& sink) {
  const vmdk::SparseHeader& h = image.header;
  if ((h.flags & (vmdk::kFlagCompressed | vmdk::kFlagMarkers)) != 0 ||
      h.gd_offset_sectors == vmdk::kGdAtEnd) {
    return Fail(PlanError::kFormatCannotResize);
  }
  const uint64_t grain = h.grain_sectors;
  const uint64_t per_table = h.gtes_per_gt;
  uint64_t span = 0;  // sectors one grain table maps
  if (!base::CheckedMul(per_table, grain, &span)) return Fail(PlanError::kFormatCannotResize);
  const uint64_t old_capacity = h.capacity_sectors;
  const uint64_t old_tables = base::DivRoundUp(old_capacity, span);
  const uint64_t new_tables = base::DivRoundUp(new_capacity, span);
  const uint64_t table_sectors = base::DivRoundUp(per_table * 4, kSector);
  const uint64_t old_dir_sectors = base::DivRoundUp(old_tables * 4, kSector);
  const uint64_t new_dir_sectors = base::DivRoundUp(new_tables * 4, kSector);
  const bool redundant = (h.flags & kFlagRedundantGd) != 0;
  const uint32_t copies = redundant ? 2 : 1;
  const bool relocate = new_dir_sectors > old_dir_sectors;

  // The directories as they are: inside the file, every table they list too.
  Directory dirs[2];
  dirs[0].sector = h.gd_offset_sectors;
  dirs[1].sector = h.rgd_offset_sectors;
  for (uint32_t c = 0; c < copies; ++c) {
    Directory& d = dirs[c];
    uint64_t end = 0;
    if (d.sector == 0 || d.sector > image.file_size / kSector ||
        !base::CheckedAdd(d.sector * kSector, old_dir_sectors * kSector, &end) ||
        end > image.file_size) {
      return Fail(PlanError::kVmdkCorrupt, d.sector * kSector);
    }
    d.entries = arena.Allocate(new_dir_sectors * kSector, kSector);
    if (d.entries == nullptr) return Fail(PlanError::kScratchTooSmall);
    __builtin_memset(d.entries, 0, new_dir_sectors * kSector);
    if (!reader.Read(d.sector * kSector, old_tables * 4, d.entries)) {
      return Fail(PlanError::kIoError);
    }
    for (uint64_t t = 0; t < old_tables; ++t) {
      const uint64_t at = base::LoadLe32(d.entries + 4 * t);
      if (at != 0 && (at + table_sectors) * kSector > image.file_size) {
        return Fail(PlanError::kVmdkCorrupt, at * kSector);
      }
    }
  }

  // New space, grain aligned, past the end of the file: directories (when they move), then
  // every new table of each directory.
  const uint64_t grain_bytes = grain * kSector;
  uint64_t next = base::DivRoundUp(image.file_size, grain_bytes) * grain;
  for (uint32_t c = 0; c < copies; ++c) {
    dirs[c].new_sector = relocate ? next : dirs[c].sector;
    if (relocate) next += new_dir_sectors;
  }
  for (uint32_t c = 0; c < copies; ++c) {
    dirs[c].first_table = next;
    next += (new_tables - old_tables) * table_sectors;
  }
  // Directory entries are 32-bit sector numbers.
  if (next > 0xFFFFFFFFull) return Fail(PlanError::kFormatCannotResize);
  const uint64_t new_end = next * kSector;

  // The new header, prepared before anything is written.
  uint8_t* header = arena.Allocate(kSector, kSector);
  if (header == nullptr || image.header_bytes.size() < kSector) {
    return Fail(PlanError::kScratchTooSmall);
  }
  __builtin_memcpy(header, image.header_bytes.data(), kSector);
  base::StoreLe64(header + kCapacityOffset, new_capacity);
  base::StoreLe64(header + kGdOffsetField, dirs[0].new_sector);
  if (redundant) base::StoreLe64(header + kRgdOffsetField, dirs[1].new_sector);

  // Stale entries past the old end in its last table would become visible: clear them.
  const uint64_t used_in_last = old_capacity % span == 0 ? per_table
                                                         : base::DivRoundUp(old_capacity % span, grain);
  VmdkGrowSummary summary;
  summary.new_grain_tables = new_tables - old_tables;
  summary.directories_relocated = relocate;

  // 1. Zero-filled space for the new tables (and directories): the file grows.
  if (new_end > image.file_size) {
    const bool ok = extend == ExtendBy::kSetSize
                        ? Emit(sink, StepKind::kSetSize, Phase::kNewMetadata, 0, new_end)
                        : Emit(sink, StepKind::kZero, Phase::kNewMetadata, image.file_size,
                               new_end - image.file_size);
    if (!ok) return Fail(PlanError::kIoError);
  }
  for (uint32_t c = 0; c < copies; ++c) {
    const uint64_t last = old_tables == 0 ? 0 : base::LoadLe32(dirs[c].entries + 4 * (old_tables - 1));
    if (last != 0 && used_in_last < per_table &&
        !Emit(sink, StepKind::kZero, Phase::kNewMetadata, last * kSector + used_in_last * 4,
              (per_table - used_in_last) * 4)) {
      return Fail(PlanError::kIoError);
    }
  }
  // 2. Directory entries for the new tables: past the old end, so unused until the header
  // changes (redundant directory first, as VMware keeps it the fallback).
  for (uint32_t c = copies; c-- > 0;) {
    Directory& d = dirs[c];
    for (uint64_t t = old_tables; t < new_tables; ++t) {
      base::StoreLe32(d.entries + 4 * t,
                static_cast<uint32_t>(d.first_table + (t - old_tables) * table_sectors));
    }
    const bool ok =
        relocate ? Emit(sink, StepKind::kWrite, Phase::kNewMetadata, d.new_sector * kSector,
                        new_dir_sectors * kSector, d.entries)
                 : new_tables == old_tables ||
                       Emit(sink, StepKind::kWrite, Phase::kPointer,
                            d.sector * kSector + old_tables * 4, (new_tables - old_tables) * 4,
                            d.entries + old_tables * 4);
    if (!ok) return Fail(PlanError::kIoError);
  }
  // 3. The descriptor, then the header: the capacity qemu reads is the header's.
  if (descriptor != nullptr &&
      !Emit(sink, StepKind::kWrite, Phase::kHeader, h.descriptor_offset_sectors * kSector,
            image.descriptor_text.size(), descriptor)) {
    return Fail(PlanError::kIoError);
  }
  if (!Emit(sink, StepKind::kWrite, Phase::kHeader, 0, kSector, header)) {
    return Fail(PlanError::kIoError);
  }
  return summary;
}

}  // namespace

base::Result<VmdkGrowSummary, PlanError> PlanVmdkGrow(const VmdkImage& image, uint64_t new_size,
                                                      const ImageReader& reader,
                                                      base::Arena& arena, const StepSink& sink) {
  if (image.descriptor == nullptr || image.header.descriptor_offset_sectors == 0 ||
      !IsMonolithicSparse(image)) {
    return Fail(PlanError::kFormatCannotResize);
  }
  const uint64_t new_capacity = new_size / kSector;
  const uint64_t descriptor_bytes = image.descriptor_text.size();
  uint8_t* descriptor = arena.Allocate(descriptor_bytes, kSector);
  if (descriptor == nullptr) return Fail(PlanError::kScratchTooSmall);
  if (!RewriteVmdkSize(image.descriptor_text, new_capacity, descriptor, descriptor_bytes)) {
    return Fail(PlanError::kVmdkBadDescriptor);
  }
  return GrowExtent(image, new_capacity, ExtendBy::kSetSize, descriptor, reader, arena, sink);
}

base::Result<VmdkGrowSummary, PlanError> PlanSparseExtentGrow(const VmdkImage& image,
                                                              uint64_t new_capacity,
                                                              const ImageReader& reader,
                                                              base::Arena& arena,
                                                              const StepSink& sink) {
  return GrowExtent(image, new_capacity, ExtendBy::kWritingZeros, nullptr, reader, arena, sink);
}

}  // namespace instar::resize
