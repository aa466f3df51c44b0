#include "crates/image_write/vmdk_writer.h"

#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/resize/vmdk_grow.h"

namespace instar::image_write {
namespace {

using base::Fail;

constexpr uint64_t kSector = 512;
constexpr uint32_t kFlagZeroedGrain = 1u << 2;
constexpr uint32_t kZeroedGrainEntry = 1;
constexpr uint32_t kDefaultCacheTables = 64;

void StoreLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Passes steps on while noting how far they reach (the file's end after a grow).
struct EndTracker {
  const StepSink* inner = nullptr;
  uint64_t end = 0;

  static bool Forward(void* self, const Step& step) {
    auto* t = static_cast<EndTracker*>(self);
    uint64_t end = step.length;
    if (step.kind != StepKind::kSetSize && !base::CheckedAdd(step.offset, step.length, &end)) {
      return false;
    }
    if (end > t->end) t->end = end;
    return t->inner->Emit(step);
  }
};

}  // namespace

base::Result<VmdkWriter*, WriteError> VmdkWriter::Open(const ImageReader& reader,
                                                       const StepSink& sink, base::Arena& arena,
                                                       uint64_t cache_bytes) {
  void* raw = arena.Allocate(sizeof(VmdkWriter), alignof(VmdkWriter));
  if (raw == nullptr) return Fail(WriteError::kScratchTooSmall);
  auto* w = new (raw) VmdkWriter();
  w->reader_ = reader;
  w->sink_ = sink;
  w->arena_ = &arena;
  w->cache_bytes_ = cache_bytes;
  TRY_STATUS(w->Load());
  return w;
}

base::Status<WriteError> VmdkWriter::Load() {
  base::Arena& arena = *arena_;
  file_size_ = reader_.size;
  header_bytes_ = arena.Allocate(kSector, kSector);
  if (header_bytes_ == nullptr) return Fail(WriteError::kScratchTooSmall);
  __builtin_memset(header_bytes_, 0, kSector);
  const uint64_t head = file_size_ < kSector ? file_size_ : kSector;
  if (head != 0 && !reader_.Read(0, head, header_bytes_)) return Fail(WriteError::kIoError, 0);
  auto parsed = vmdk::ParseSparseHeader(base::ByteView(header_bytes_, head), file_size_);
  if (!parsed.ok()) return Fail(WriteError::kVmdkNotSparse, static_cast<uint64_t>(parsed.error().code));
  header_ = parsed.value();
  const vmdk::SparseHeader& h = header_;
  if ((h.flags & (vmdk::kFlagCompressed | vmdk::kFlagMarkers)) != 0 ||
      h.gd_offset_sectors == vmdk::kGdAtEnd) {
    return Fail(WriteError::kVmdkStreamOptimized);
  }
  // The embedded descriptor must say monolithicSparse (one extent, this file).
  if (h.descriptor_offset_sectors == 0 || h.descriptor_size_sectors == 0 ||
      h.descriptor_size_sectors > vmdk::kMaxDescriptorBytes / kSector ||
      h.descriptor_offset_sectors > file_size_ / kSector) {
    return Fail(WriteError::kVmdkNotSparse);
  }
  const uint64_t text_bytes = h.descriptor_size_sectors * kSector;
  uint64_t text_end = 0;
  if (!base::CheckedAdd(h.descriptor_offset_sectors * kSector, text_bytes, &text_end) ||
      text_end > file_size_) {
    return Fail(WriteError::kVmdkCorrupt, h.descriptor_offset_sectors * kSector);
  }
  uint8_t* text = arena.Allocate(text_bytes, kSector);
  descriptor_ = arena.New<vmdk::Descriptor>();
  if (text == nullptr || descriptor_ == nullptr) return Fail(WriteError::kScratchTooSmall);
  if (!reader_.Read(h.descriptor_offset_sectors * kSector, text_bytes, text)) {
    return Fail(WriteError::kIoError, h.descriptor_offset_sectors * kSector);
  }
  descriptor_text_ = base::ByteView(text, text_bytes);
  if (!vmdk::ParseDescriptor(descriptor_text_, descriptor_).ok()) {
    return Fail(WriteError::kVmdkNotSparse);
  }
  resize::VmdkImage image;
  image.header = h;
  image.header_bytes = base::ByteView(header_bytes_, kSector);
  image.descriptor_text = descriptor_text_;
  image.descriptor = descriptor_;
  image.file_size = file_size_;
  if (!resize::IsMonolithicSparse(image)) return Fail(WriteError::kVmdkNotSparse);

  // Geometry: qemu's limits hold (ParseSparseHeader), so these products fit.
  uint64_t span = 0;
  if (h.gtes_per_gt == 0 || h.grain_sectors == 0 ||
      !base::CheckedMul(h.gtes_per_gt, h.grain_sectors, &span)) {
    return Fail(WriteError::kVmdkCorrupt, 0);
  }
  directory_entries_ = base::DivRoundUp(h.capacity_sectors, span);
  table_sectors_ = base::DivRoundUp(uint64_t{h.gtes_per_gt} * 4, kSector);
  const uint64_t dir_bytes = base::DivRoundUp(directory_entries_ * 4, kSector) * kSector;
  dir_count_ = (h.flags & vmdk::kFlagRedundantGrainTable) != 0 ? 2 : 1;
  const uint64_t dir_sectors[2] = {h.gd_offset_sectors, h.rgd_offset_sectors};
  for (uint32_t d = 0; d < dir_count_; ++d) {
    if (dir_sectors[d] == 0 || dir_sectors[d] > file_size_ / kSector) {
      return Fail(WriteError::kVmdkCorrupt, dir_sectors[d]);
    }
    dirs_[d].offset = dir_sectors[d] * kSector;
    uint64_t end = 0;
    if (!base::CheckedAdd(dirs_[d].offset, directory_entries_ * 4, &end) || end > file_size_) {
      return Fail(WriteError::kVmdkCorrupt, dirs_[d].offset);
    }
    dirs_[d].entries = arena.Allocate(dir_bytes == 0 ? kSector : dir_bytes, kSector);
    if (dirs_[d].entries == nullptr) return Fail(WriteError::kScratchTooSmall);
    if (directory_entries_ != 0 &&
        !reader_.Read(dirs_[d].offset, directory_entries_ * 4, dirs_[d].entries)) {
      return Fail(WriteError::kIoError, dirs_[d].offset);
    }
  }
  dirs_dirty_ = false;
  // New grains and tables go past the end, grain aligned (qemu's next cluster sector).
  next_sector_ = base::DivRoundUp(file_size_, h.grain_sectors * kSector) * h.grain_sectors;

  const uint64_t table_bytes = table_sectors_ * kSector;
  uint64_t tables = (cache_bytes_ != 0 ? cache_bytes_ : arena.remaining() / 4) / (table_bytes + 128);
  if (tables > kDefaultCacheTables) tables = kDefaultCacheTables;
  if (tables == 0) tables = 1;
  void* cache_raw = arena.Allocate(sizeof(TableCache), alignof(TableCache));
  if (cache_raw == nullptr) return Fail(WriteError::kScratchTooSmall);
  cache_ = new (cache_raw) TableCache(table_bytes, static_cast<uint32_t>(tables), arena);
  if (cache_->capacity() == 0) return Fail(WriteError::kScratchTooSmall);
  return {};
}

base::Status<WriteError> VmdkWriter::Latch(base::Status<WriteError> status) {
  if (!status.ok() && !failed_) {
    failed_ = true;
    error_ = status.error();
  }
  return status;
}

uint64_t VmdkWriter::virtual_size() const { return header_.capacity_sectors * kSector; }
uint64_t VmdkWriter::grain_size() const { return header_.grain_sectors * kSector; }
uint64_t VmdkWriter::guest_grains() const {
  return base::DivRoundUp(header_.capacity_sectors, header_.grain_sectors);
}

base::Status<WriteError> VmdkWriter::CheckRange(uint64_t first, uint64_t count) const {
  uint64_t end = 0;
  if (!base::CheckedAdd(first, count, &end) || end > guest_grains()) {
    return Fail(WriteError::kOutOfRange, first);
  }
  return {};
}

base::Result<uint64_t, WriteError> VmdkWriter::TableSectorAt(const Directory& dir,
                                                             uint64_t index) const {
  const uint64_t sector = base::LoadLe32(dir.entries + 4 * index);
  if (sector == 0) return sector;
  // Inside the file (64-bit products of a 32-bit entry cannot overflow).
  if ((sector + table_sectors_) * kSector > file_size_) {
    return Fail(WriteError::kVmdkCorrupt, sector * kSector);
  }
  return sector;
}

base::Result<TableSlot*, WriteError> VmdkWriter::TakeSlot(uint64_t index) {
  TableSlot* slot = cache_->Take(index);
  if (slot == nullptr) {
    TRY_STATUS(FlushImpl());
    slot = cache_->Take(index);
    if (slot == nullptr) return Fail(WriteError::kScratchTooSmall);
  }
  return slot;
}

base::Result<TableSlot*, WriteError> VmdkWriter::LoadTable(uint64_t index) {
  TableSlot* slot = cache_->Find(index);
  if (slot != nullptr) return slot;
  uint64_t sector, mirror = 0;
  TRY(sector, TableSectorAt(dirs_[0], index));
  if (dir_count_ == 2) {
    TRY(mirror, TableSectorAt(dirs_[1], index));
  }
  if (sector == 0) return static_cast<TableSlot*>(nullptr);
  TRY(slot, TakeSlot(index));
  slot->used = false;  // until it holds the table
  if (!reader_.Read(sector * kSector, table_sectors_ * kSector, slot->bytes)) {
    return Fail(WriteError::kIoError, sector * kSector);
  }
  slot->host_offset = sector * kSector;
  slot->mirror_offset = mirror * kSector;
  slot->used = true;
  return slot;
}

base::Result<uint64_t, WriteError> VmdkWriter::Append(uint64_t sectors) {
  const uint64_t first = next_sector_;
  uint64_t end = 0;
  // Table and grain entries are 32-bit sector numbers.
  if (!base::CheckedAdd(first, sectors, &end) || end > 0xFFFFFFFFull) {
    return Fail(WriteError::kVmdkCorrupt, first * kSector);
  }
  next_sector_ = end;
  if (end * kSector > file_size_) file_size_ = end * kSector;
  return first;
}

base::Result<TableSlot*, WriteError> VmdkWriter::WritableTable(uint64_t index) {
  TableSlot* slot;
  TRY(slot, LoadTable(index));
  if (slot != nullptr) return slot;
  // No table yet: a zeroed one for each directory, pointed to at the flush.
  uint64_t sector;
  TRY(sector, Append(table_sectors_ * dir_count_));
  TRY(slot, TakeSlot(index));
  __builtin_memset(slot->bytes, 0, table_sectors_ * kSector);
  slot->host_offset = sector * kSector;
  slot->mirror_offset = dir_count_ == 2 ? (sector + table_sectors_) * kSector : 0;
  slot->fresh = slot->dirty = true;
  for (uint32_t d = 0; d < dir_count_; ++d) {
    StoreLe32(dirs_[d].entries + 4 * index,
              static_cast<uint32_t>((d == 0 ? slot->host_offset : slot->mirror_offset) / kSector));
  }
  if (!dirs_dirty_) {
    dirs_dirty_ = true;
    dirs_dirty_first_ = dirs_dirty_last_ = index;
  } else {
    if (index < dirs_dirty_first_) dirs_dirty_first_ = index;
    if (index > dirs_dirty_last_) dirs_dirty_last_ = index;
  }
  ++stats_.tables_allocated;
  return slot;
}

base::Result<uint32_t, WriteError> VmdkWriter::EntryAt(const TableSlot& slot,
                                                       uint64_t index) const {
  const uint32_t entry = base::LoadLe32(slot.bytes + 4 * index);
  if (entry == 0 || (entry == kZeroedGrainEntry && (header_.flags & kFlagZeroedGrain) != 0)) {
    return entry;
  }
  // A grain lies past the metadata the header reserves and starts inside the file.
  if (entry < header_.overhead_sectors || uint64_t{entry} * kSector >= file_size_) {
    return Fail(WriteError::kVmdkCorrupt, uint64_t{entry} * kSector);
  }
  return entry;
}

base::Result<ClusterMapping, WriteError> VmdkWriter::Map(uint64_t grain) {
  if (failed_) return error_;
  auto mapped = [&]() -> base::Result<ClusterMapping, WriteError> {
    TRY_STATUS(CheckRange(grain, 1));
    ClusterMapping m;
    TableSlot* slot;
    TRY(slot, LoadTable(grain / header_.gtes_per_gt));
    if (slot == nullptr) return m;
    uint32_t entry;
    TRY(entry, EntryAt(*slot, grain % header_.gtes_per_gt));
    if (entry == 0) return m;
    if (entry == kZeroedGrainEntry && (header_.flags & kFlagZeroedGrain) != 0) {
      m.state = ClusterState::kZero;
      return m;
    }
    m.state = ClusterState::kData;
    m.host_offset = uint64_t{entry} * kSector;
    return m;
  }();
  if (!mapped.ok()) (void)Latch(mapped.error());
  return mapped;
}

base::Status<WriteError> VmdkWriter::QueueData(uint64_t offset, uint64_t length,
                                               const uint8_t* bytes) {
  const bool continues =
      pending_.length != 0 && pending_.offset + pending_.length == offset &&
      ((bytes == nullptr && pending_.bytes == nullptr) ||
       (bytes != nullptr && pending_.bytes != nullptr && pending_.bytes + pending_.length == bytes));
  if (continues) {
    pending_.length += length;
    return {};
  }
  TRY_STATUS(EmitPendingData());
  pending_ = PendingData{offset, length, bytes};
  return {};
}

base::Status<WriteError> VmdkWriter::EmitPendingData() {
  if (pending_.length == 0) return {};
  const PendingData p = pending_;
  pending_ = PendingData{};
  if (!Emit(sink_, p.bytes == nullptr ? StepKind::kZero : StepKind::kWrite, Phase::kData,
            p.offset, p.length, p.bytes)) {
    return Fail(WriteError::kIoError, p.offset);
  }
  ++stats_.data_steps;
  return {};
}

base::Status<WriteError> VmdkWriter::WriteRange(uint64_t first, uint64_t count,
                                                const uint8_t* data) {
  TRY_STATUS(CheckRange(first, count));
  const uint64_t per_table = header_.gtes_per_gt;
  const uint64_t grain_bytes = grain_size();
  for (uint64_t g = first; g < first + count;) {
    const uint64_t index = g / per_table;
    const uint64_t within = g % per_table;
    const uint64_t n =
        per_table - within < first + count - g ? per_table - within : first + count - g;
    TableSlot* slot;
    TRY(slot, WritableTable(index));
    for (uint64_t k = 0; k < n; ++k) {
      uint32_t entry;
      TRY(entry, EntryAt(*slot, within + k));
      uint64_t sector = entry;
      if (entry == 0 || (entry == kZeroedGrainEntry && (header_.flags & kFlagZeroedGrain) != 0)) {
        TRY(sector, Append(header_.grain_sectors));
        StoreLe32(slot->bytes + 4 * (within + k), static_cast<uint32_t>(sector));
        slot->dirty = true;
        ++stats_.grains_allocated;
      }
      const uint8_t* bytes = data == nullptr ? nullptr : data + (g - first + k) * grain_bytes;
      TRY_STATUS(QueueData(sector * kSector, grain_bytes, bytes));
    }
    g += n;
  }
  return EmitPendingData();
}

base::Status<WriteError> VmdkWriter::SetEntries(uint64_t first, uint64_t count, uint32_t value) {
  TRY_STATUS(CheckRange(first, count));
  const uint64_t per_table = header_.gtes_per_gt;
  for (uint64_t g = first; g < first + count;) {
    const uint64_t index = g / per_table;
    const uint64_t within = g % per_table;
    const uint64_t n =
        per_table - within < first + count - g ? per_table - within : first + count - g;
    g += n;
    TableSlot* slot;
    TRY(slot, LoadTable(index));
    if (slot == nullptr && value == 0) continue;  // already unallocated
    if (slot == nullptr) {
      TRY(slot, WritableTable(index));
    }
    for (uint64_t k = within; k < within + n; ++k) {
      uint32_t entry;
      TRY(entry, EntryAt(*slot, k));
      if (entry == value) continue;
      StoreLe32(slot->bytes + 4 * k, value);
      slot->dirty = true;
    }
  }
  return {};
}

base::Status<WriteError> VmdkWriter::WriteGrains(uint64_t first, uint64_t count,
                                                 const uint8_t* data) {
  if (failed_) return error_;
  if (data == nullptr) return Latch(Fail(WriteError::kOutOfRange, first));
  return Latch(WriteRange(first, count, data));
}

base::Status<WriteError> VmdkWriter::ZeroGrains(uint64_t first, uint64_t count) {
  if (failed_) return error_;
  if ((header_.flags & kFlagZeroedGrain) != 0) {
    return Latch(SetEntries(first, count, kZeroedGrainEntry));
  }
  return Latch(WriteRange(first, count, nullptr));
}

base::Status<WriteError> VmdkWriter::DiscardGrains(uint64_t first, uint64_t count) {
  if (failed_) return error_;
  return Latch(SetEntries(first, count, 0));
}

base::Status<WriteError> VmdkWriter::Flush() {
  if (failed_) return error_;
  return Latch(FlushImpl());
}

base::Status<WriteError> VmdkWriter::FlushImpl() {
  TRY_STATUS(EmitPendingData());
  const uint64_t table_bytes = table_sectors_ * kSector;
  // New tables first (nothing points to them), then changed ones; both copies each.
  for (int pass = 0; pass < 2; ++pass) {
    const bool want_fresh = pass == 0;
    bool ok = cache_->ForEachDirty([&](TableSlot& slot) {
      if (slot.fresh != want_fresh) return true;
      const Phase phase = slot.fresh ? Phase::kNewMetadata : Phase::kPointer;
      if (!Emit(sink_, StepKind::kWrite, phase, slot.host_offset, table_bytes, slot.bytes) ||
          (slot.mirror_offset != 0 &&
           !Emit(sink_, StepKind::kWrite, phase, slot.mirror_offset, table_bytes, slot.bytes))) {
        return false;
      }
      slot.dirty = slot.fresh = false;
      return true;
    });
    if (!ok) return Fail(WriteError::kIoError);
  }
  // Then the directory entries that point to new tables, primary and redundant.
  if (dirs_dirty_) {
    const uint64_t first = dirs_dirty_first_;
    const uint64_t bytes = 4 * (dirs_dirty_last_ - first + 1);
    for (uint32_t d = 0; d < dir_count_; ++d) {
      if (!Emit(sink_, StepKind::kWrite, Phase::kPointer, dirs_[d].offset + 4 * first, bytes,
                dirs_[d].entries + 4 * first)) {
        return Fail(WriteError::kIoError, dirs_[d].offset);
      }
    }
    dirs_dirty_ = false;
  }
  ++stats_.flushes;
  return {};
}

base::Status<WriteError> VmdkWriter::GrowImpl(uint64_t new_size) {
  if (new_size % kSector != 0) return Fail(WriteError::kSizeNotSectorMultiple, new_size);
  if (new_size <= virtual_size()) return Fail(WriteError::kNotGrowing, new_size);
  TRY_STATUS(FlushImpl());
  resize::VmdkImage image;
  image.header = header_;
  image.header_bytes = base::ByteView(header_bytes_, kSector);
  image.descriptor_text = descriptor_text_;
  image.descriptor = descriptor_;
  image.file_size = next_sector_ * kSector > file_size_ ? next_sector_ * kSector : file_size_;
  const uint64_t mark = arena_->used();
  EndTracker tracker{&sink_, image.file_size};
  const StepSink tracked{&tracker, &EndTracker::Forward};
  auto planned = resize::PlanVmdkGrow(image, new_size, reader_, *arena_, tracked);
  arena_->Rewind(mark);
  if (!planned.ok()) return FromPlanError(planned.error());
  // Header, directories and tables may have moved: read them again.
  reader_.size = tracker.end;
  cache_->Clear();
  return Load();
}

base::Status<WriteError> VmdkWriter::Grow(uint64_t new_size) {
  if (failed_) return error_;
  return Latch(GrowImpl(new_size));
}

}  // namespace instar::image_write
