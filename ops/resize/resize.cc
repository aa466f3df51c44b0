// The resize operation: the image is the output device (read/write). It probes or checks the
// format, works out the new virtual size the way qemu-img does (relative sizes, its checks in
// its order), then hands the format's planner a sink that applies every step at once. Each
// planner runs twice: a dry run that reads and validates everything it will touch, so a
// corrupt image is refused untouched, then the real run. The ResizeResult is sent even on
// failure (the host needs the probed format for qemu-img's raw-probing warning).
#include "ops/resize/resize.h"

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/image_format.h"
#include "abi/resize.h"
#include "abi/transport.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/base/result.h"
#include "crates/probe/probe.h"
#include "crates/image_write/plan_error.h"
#include "crates/resize/qcow2_grow.h"
#include "crates/image_write/qcow2_image.h"
#include "crates/resize/qcow2_preallocate.h"
#include "crates/resize/qcow2_shrink.h"
#include "crates/image_write/step.h"
#include "crates/resize/vmdk_grow.h"
#include "crates/resize/vmdk_split.h"
#include "crates/resize/vmdk_text.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/extent_name.h"
#include "crates/vmdk/sparse_header.h"
#include "ops/common/device_io.h"
#include "ops/common/finish_operation.h"
#include "ops/common/step_executor.h"

namespace {

using instar::abi::ImageFormat;
using instar::abi::Preallocation;
using instar::abi::ResizeConfig;
using instar::abi::ResizeError;
using instar::abi::ResizeResult;
using instar::base::Arena;
using instar::base::ByteView;
using instar::base::Fail;
using instar::image_write::PlanError;

using ResizeStatus = instar::base::Status<ResizeError>;

constexpr uint64_t kSector = 512;
// qemu's largest image length: INT64_MAX rounded down to 1 GiB.
constexpr uint64_t kMaxImageLength = 0x7FFFFFFFC0000000ull;

ResizeResult g_result;

ResizeError FromPlan(PlanError e) {
  switch (e) {
    case PlanError::kIoError: return ResizeError::kIoError;
    case PlanError::kScratchTooSmall: return ResizeError::kScratchTooSmall;
    case PlanError::kL1TooLarge: return ResizeError::kL1TooLarge;
    case PlanError::kSizeNotSectorMultiple: return ResizeError::kSizeNotSectorMultiple;
    case PlanError::kV2WithSnapshots: return ResizeError::kV2WithSnapshots;
    case PlanError::kImageCorruptFlag: return ResizeError::kImageCorruptFlag;
    case PlanError::kDirtyImage: return ResizeError::kDirtyImage;
    case PlanError::kExternalDataFile: return ResizeError::kExternalDataFile;
    case PlanError::kEncrypted: return ResizeError::kEncrypted;
    case PlanError::kCorruptL1: return ResizeError::kCorruptL1;
    case PlanError::kCorruptL2: return ResizeError::kCorruptL2;
    case PlanError::kCorruptRefcountTable: return ResizeError::kCorruptRefcountTable;
    case PlanError::kCorruptRefcount: return ResizeError::kCorruptRefcount;
    case PlanError::kFormatCannotResize: return ResizeError::kFormatCannotResize;
    case PlanError::kVmdkCorrupt: return ResizeError::kVmdkCorrupt;
    case PlanError::kVmdkBadDescriptor: return ResizeError::kVmdkBadDescriptor;
  }
  return ResizeError::kIoError;
}

bool ReadDevice(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  return static_cast<instar::ops::DeviceIo*>(context)->Read(offset, length, out).ok();
}

// Reads [0, length) clipped to the file into the arena.
instar::base::Result<ByteView, ResizeError> ReadHead(instar::ops::DeviceIo& image,
                                                     Arena& arena, uint64_t length) {
  if (length > image.size()) length = image.size();
  uint8_t* buffer = arena.Allocate(length + 1, kSector);
  if (buffer == nullptr) return Fail(ResizeError::kScratchTooSmall);
  if (length != 0 && !image.Read(0, length, buffer).ok()) return Fail(ResizeError::kIoError);
  return ByteView(buffer, length);
}

// qemu-img's checks between opening the image and calling the driver, in its order. Sets
// g_result.new_size.
ResizeStatus ResolveSize(const ResizeConfig& config, uint64_t current) {
  uint64_t total = config.new_size;
  switch (static_cast<instar::abi::ResizeSizeMode>(config.size_mode)) {
    case instar::abi::ResizeSizeMode::kAbsolute: break;
    // Two's-complement arithmetic, as qemu-img's signed 64-bit sum behaves.
    case instar::abi::ResizeSizeMode::kGrowBy: total = current + config.new_size; break;
    case instar::abi::ResizeSizeMode::kShrinkBy: total = current - config.new_size; break;
  }
  g_result.new_size = total;
  if (static_cast<int64_t>(total) <= 0) return Fail(ResizeError::kSizeNotPositive);
  const auto prealloc = static_cast<Preallocation>(config.preallocation);
  if (total <= current && prealloc != Preallocation::kOff) {
    return Fail(ResizeError::kPreallocationNeedsGrowth);
  }
  if (total < current && (config.flags & instar::abi::kResizeAllowShrink) == 0) {
    return Fail(ResizeError::kShrinkNotAllowed);
  }
  if (total > kMaxImageLength) return Fail(ResizeError::kSizeAboveMaximum, total);
  return {};
}

ResizeStatus ResizeRaw(const instar::abi::CallTable* table, instar::ops::DeviceIo& image,
                       instar::ops::StepExecutor& executor, const ResizeConfig& config) {
  // The block layer sees whole sectors: a raw image's length rounds up to one.
  const uint64_t current = instar::base::DivRoundUp(image.size(), kSector) * kSector;
  g_result.old_size = current;
  TRY_STATUS(ResolveSize(config, current));
  const uint64_t total = g_result.new_size;
  const auto prealloc = static_cast<Preallocation>(config.preallocation);
  if (prealloc == Preallocation::kMetadata) {
    return Fail(ResizeError::kPreallocationUnsupported, config.preallocation);
  }
  const uint64_t old_file = image.size();
  if (table->set_output_size(total) != 0) return Fail(ResizeError::kFileTooLarge, total);
  ++g_result.writes;
  // falloc and full both leave allocated zeros behind the old end.
  if (prealloc != Preallocation::kOff && total > old_file) {
    instar::image_write::Step zeros;
    zeros.kind = instar::image_write::StepKind::kZero;
    zeros.offset = old_file;
    zeros.length = total - old_file;
    if (!executor.sink().Emit(zeros)) return Fail(ResizeError::kIoError);
  }
  return {};
}

// Everything left in `arena`, as one page-aligned block.
struct Region {
  uint8_t* base = nullptr;
  uint64_t size = 0;
};
instar::base::Result<Region, ResizeError> Rest(Arena& arena) {
  // (Less one page: the allocation is page aligned.)
  if (arena.remaining() < 4096) return Fail(ResizeError::kScratchTooSmall);
  Region r;
  r.size = arena.remaining() - 4096;
  r.base = arena.Allocate(r.size, 4096);
  if (r.base == nullptr) return Fail(ResizeError::kScratchTooSmall);
  return r;
}

// Runs a planner twice: a dry run that validates everything, then for real. Each run gets a
// fresh arena over `memory`.
template <class Planner>
ResizeStatus DryRunThenApply(instar::ops::StepExecutor& executor, Region memory,
                             Planner&& plan) {
  uint8_t* planner_memory = memory.base;
  const uint64_t planner_bytes = memory.size;
  const instar::image_write::StepSink dry_run;
  const instar::image_write::StepSink apply = executor.sink();
  const instar::image_write::StepSink* runs[] = {&dry_run, &apply};
  for (const instar::image_write::StepSink* sink : runs) {
    Arena planner_arena(planner_memory, planner_bytes);
    PlanError error = PlanError::kIoError;
    unsigned long long detail = 0;
    if (!plan(planner_arena, *sink, &error, &detail)) return Fail(FromPlan(error), detail);
  }
  return {};
}

instar::base::Result<ByteView, ResizeError> ReadRange(instar::ops::DeviceIo& image,
                                                      Arena& arena, uint64_t offset,
                                                      uint64_t length) {
  uint64_t end = 0;
  if (!instar::base::CheckedAdd(offset, length, &end) || end > image.size()) {
    return Fail(ResizeError::kVmdkCorrupt, offset);
  }
  uint8_t* buffer = arena.Allocate(length, kSector);
  if (buffer == nullptr) return Fail(ResizeError::kScratchTooSmall);
  if (!image.Read(offset, length, buffer).ok()) return Fail(ResizeError::kIoError);
  return ByteView(buffer, length);
}

// Opens the qcow2 image from its first bytes: 64 KiB hold the header and its extensions in
// practice (the whole first cluster is read only when they do not), which keeps the arena for
// the planners when clusters are large.
instar::base::Result<instar::image_write::Qcow2Image, ResizeError> OpenQcow2Image(
    instar::ops::DeviceIo& image, Arena& arena, const instar::image_write::ImageReader& reader) {
  constexpr uint64_t kFirstTry = 64u << 10;
  ByteView head;
  TRY(head, ReadHead(image, arena, kFirstTry));
  auto opened = instar::image_write::OpenQcow2(reader, head, arena);
  if (!opened.ok() && opened.error().code.header_failed && image.size() > head.size()) {
    TRY(head, ReadHead(image, arena, uint64_t{1} << instar::qcow2::kMaxClusterBits));
    opened = instar::image_write::OpenQcow2(reader, head, arena);
  }
  if (!opened.ok()) {
    const auto failure = opened.error();
    // A header qemu refuses: the host asks the info operation for qemu's message.
    if (failure.code.header_failed) {
      return Fail(ResizeError::kQcow2HeaderRefused,
                  static_cast<uint64_t>(failure.code.header_error));
    }
    return Fail(FromPlan(failure.code.plan_error), failure.detail);
  }
  return opened.value();
}

// The grown image, opened again (the header, L1 and refcount tables may have moved), gets
// the entries of its new range filled (preallocated, or zero).
ResizeStatus FillQcow2(instar::ops::DeviceIo& image, instar::ops::StepExecutor& executor,
                       Region memory, uint64_t old_size, uint64_t new_size,
                       instar::resize::FillMode mode) {
  Arena arena(memory.base, memory.size);
  const instar::image_write::ImageReader reader{&image, ReadDevice, image.size()};
  instar::image_write::Qcow2Image grown;
  TRY(grown, OpenQcow2Image(image, arena, reader));
  Region rest;
  TRY(rest, Rest(arena));
  return DryRunThenApply(executor, rest,
                         [&](Arena& planner_arena, const instar::image_write::StepSink& sink,
                             PlanError* error, unsigned long long* detail) {
                           auto planned = instar::resize::PlanQcow2Preallocate(
                               grown, old_size, new_size, mode, reader, planner_arena, sink);
                           if (planned.ok()) return true;
                           *error = planned.error().code;
                           *detail = planned.error().detail;
                           return false;
                         });
}

ResizeStatus ResizeQcow2(instar::ops::DeviceIo& image, instar::ops::StepExecutor& executor,
                         Arena& arena, const ResizeConfig& config) {
  g_result.format = static_cast<uint32_t>(ImageFormat::kQcow2);
  const instar::image_write::ImageReader reader{&image, ReadDevice, image.size()};
  instar::image_write::Qcow2Image qcow2;
  TRY(qcow2, OpenQcow2Image(image, arena, reader));
  g_result.old_size = qcow2.header.size;
  // qemu opens the backing file with the image; the host checks it and asks again.
  const bool has_backing = qcow2.header.backing_file.length != 0;
  if (has_backing && (config.backing_flags & instar::abi::kResizeBackingChecked) == 0) {
    return Fail(ResizeError::kHasBackingFile);
  }
  TRY_STATUS(ResolveSize(config, qcow2.header.size));
  const uint64_t total = g_result.new_size;
  if (total % kSector != 0) return Fail(ResizeError::kSizeNotSectorMultiple);
  if (qcow2.header.version < 3 && qcow2.header.nb_snapshots != 0) {
    return Fail(ResizeError::kV2WithSnapshots);
  }
  if (total == qcow2.header.size) return {};
  const bool grow = total > qcow2.header.size;
  // Growing over a longer backing file: qemu makes the new range read as zeros instead of
  // the backing file's data. The header keeps the old size until the zeros are in place.
  const auto prealloc = static_cast<Preallocation>(config.preallocation);
  const uint64_t old_size = qcow2.header.size;
  const bool zero_new_range = grow && has_backing && config.backing_size > old_size;
  if (zero_new_range) {
    if (qcow2.header.version < 3) return Fail(ResizeError::kZeroNotSupported);
    if (old_size % qcow2.geometry.cluster_size != 0 || prealloc != Preallocation::kOff) {
      return Fail(ResizeError::kBackingFileLarger, config.backing_size);
    }
  }
  const uint64_t header_size = zero_new_range ? old_size : total;
  Region memory;
  TRY(memory, Rest(arena));
  TRY_STATUS(DryRunThenApply(executor, memory,
                         [&](Arena& planner_arena, const instar::image_write::StepSink& sink,
                             PlanError* error, unsigned long long* detail) {
                           if (grow) {
                             auto planned = instar::resize::PlanQcow2Grow(
                                 qcow2, total, header_size, reader, planner_arena, sink);
                             if (planned.ok()) return true;
                             *error = planned.error().code;
                             *detail = planned.error().detail;
                             return false;
                           }
                           auto planned = instar::resize::PlanQcow2Shrink(qcow2, total, reader,
                                                                          planner_arena, sink);
                           if (planned.ok()) return true;
                           *error = planned.error().code;
                           *detail = planned.error().detail;
                           return false;
                         }));
  if (zero_new_range) {
    TRY_STATUS(FillQcow2(image, executor, memory, old_size, total,
                         instar::resize::FillMode::kZeroFlags));
    // Now the guest may see the new range.
    uint8_t field[8];
    instar::base::StoreBe64(field, total);
    instar::image_write::Step size;
    size.kind = instar::image_write::StepKind::kWrite;
    size.phase = instar::image_write::Phase::kHeader;
    size.offset = instar::image_write::kHeaderSizeOffset;
    size.length = sizeof field;
    size.bytes = field;
    if (!executor.sink().Emit(size)) return Fail(ResizeError::kIoError);
    return {};
  }
  if (!grow || prealloc == Preallocation::kOff) return {};
  return FillQcow2(image, executor, memory, old_size, total,
                   prealloc == Preallocation::kMetadata ? instar::resize::FillMode::kSparseData
                                                        : instar::resize::FillMode::kZeroedData);
}

// A NUL-terminated string of the config, or null when it is not terminated inside its field.
const char* ConfigString(const char* field, uint64_t capacity) {
  for (uint64_t i = 0; i < capacity; ++i) {
    if (field[i] == '\0') return field;
  }
  return nullptr;
}

// Applies a planner's steps to one attached device through an executor built over `memory`
// (one at a time: executors for many devices would not fit the arena), then flushes the
// device: what a later device's steps point to is durable first.
template <class Planner>
ResizeStatus ApplyOn(const instar::abi::CallTable* table, instar::ops::DeviceIo& device,
                     Region memory, Planner&& plan) {
  Arena arena(memory.base, memory.size);
  instar::ops::StepExecutor executor(table, device, arena);
  if (!executor.ready()) return Fail(ResizeError::kScratchTooSmall);
  PlanError error = PlanError::kIoError;
  unsigned long long detail = 0;
  const bool ok = plan(arena, executor.sink(), &error, &detail);
  g_result.writes += executor.steps_applied();
  if (!ok) return Fail(FromPlan(error), detail);
  if (!device.Flush().ok()) return Fail(ResizeError::kIoError);
  return {};
}

// twoGbMaxExtentSparse growth (instar's own; qemu-img resizes no VMDK). The first run has
// only the descriptor file attached and tells the host how many extent files to create; the
// second has the extents (the last one writable) and the new, empty files attached. New
// extents are written whole first, then the last extent grows (its header last), and the
// descriptor, which names the new files and is what makes them part of the disk, comes last in
// one write.
ResizeStatus GrowSplitVmdk(const instar::abi::CallTable* table, instar::ops::DeviceIo& image,
                           instar::ops::StepExecutor& executor, Arena& arena, ByteView text,
                           const instar::vmdk::Descriptor& descriptor, const ResizeConfig& config) {
  const uint64_t total = g_result.new_size;
  if (total <= g_result.old_size ||
      config.preallocation != static_cast<uint32_t>(Preallocation::kOff)) {
    return Fail(ResizeError::kFormatCannotResize);
  }
  if (total % kSector != 0) return Fail(ResizeError::kSizeNotSectorMultiple);
  const uint32_t k = descriptor.extent_count;
  const uint64_t last_sectors = descriptor.extents[k - 1].sectors;
  instar::resize::SplitGrowth growth;
  if (!instar::resize::PlanSplitGrowth(g_result.old_size / kSector, total / kSector, last_sectors,
                                       instar::vmdk::kMaxExtents - k, &growth)) {
    return Fail(ResizeError::kTooManyExtents, total);
  }
  if ((config.extent_flags & instar::abi::kResizeExtentsAttached) == 0) {
    return Fail(ResizeError::kNeedsExtents, growth.new_extents);
  }
  const char* stem = ConfigString(config.extent_stem, sizeof config.extent_stem);
  const char* suffix = ConfigString(config.extent_suffix, sizeof config.extent_suffix);
  if (config.new_extent_count != growth.new_extents || stem == nullptr || suffix == nullptr ||
      config.first_extent_number > instar::vmdk::kMaxExtents + 1 ||
      table->get_input_device_count() != k + growth.new_extents) {
    return Fail(ResizeError::kBadConfig);
  }
  // qemu takes each sparse extent's size from its header: they must agree with the text.
  instar::resize::VmdkImage last;
  for (uint32_t i = 0; i < k; ++i) {
    instar::ops::DeviceIo extent(table, i);
    ByteView head;
    TRY(head, ReadHead(extent, arena, kSector));
    auto sparse = instar::vmdk::ReadSparseHeader(
        head, extent.size(), [&](uint64_t offset, uint64_t length, uint8_t* out) {
          return extent.Read(offset, length, out).ok();
        });
    if (!sparse.ok() || sparse.value().capacity_sectors != descriptor.extents[i].sectors) {
      return Fail(ResizeError::kExtentMismatch, i);
    }
    if (i + 1 == k) {
      last.header = sparse.value();
      last.header_bytes = head;
      last.file_size = extent.size();
    }
  }
  // The new descriptor text, whole sectors, NUL padded.
  auto* lines = static_cast<instar::resize::NewExtentLine*>(static_cast<void*>(arena.Allocate(
      sizeof(instar::resize::NewExtentLine) * (growth.new_extents + 1),
      alignof(instar::resize::NewExtentLine))));
  if (lines == nullptr) return Fail(ResizeError::kScratchTooSmall);
  constexpr uint64_t kNameBytes = instar::abi::kResizeExtentStemBytes +
                                  instar::abi::kResizeExtentSuffixBytes + 16;
  for (uint32_t i = 0; i < growth.new_extents; ++i) {
    uint8_t* name = arena.Allocate(kNameBytes, 1);
    if (name == nullptr) return Fail(ResizeError::kScratchTooSmall);
    const uint64_t length = instar::vmdk::WriteExtentFileName(stem, config.first_extent_number + i,
                                                              suffix, name, kNameBytes);
    if (length == 0) return Fail(ResizeError::kBadConfig);
    lines[i].sectors = instar::resize::NewExtentSectors(growth, i);
    lines[i].name = ByteView(name, length);
  }
  instar::resize::DescriptorSizes sizes;
  sizes.total_sectors = total / kSector;
  sizes.last_extent_sectors = growth.last_extent_sectors;
  sizes.added = lines;
  sizes.added_count = growth.new_extents;
  sizes.last_extent_at = descriptor.extents[k - 1].filename.offset;
  const uint64_t room =
      instar::base::DivRoundUp(text.size() + growth.new_extents * (kNameBytes + 64) + 64, kSector) *
      kSector;
  uint8_t* rewritten = arena.Allocate(room, kSector);
  uint64_t text_length = 0;
  if (rewritten == nullptr) return Fail(ResizeError::kScratchTooSmall);
  if (!instar::resize::RewriteVmdkDescriptor(text, sizes, rewritten, room, &text_length)) {
    return Fail(ResizeError::kVmdkBadDescriptor, 0);
  }
  const uint64_t written = instar::base::DivRoundUp(text_length, kSector) * kSector;
  // The file keeps anything past the text (qemu stops at the first NUL) and loses only the
  // padding of the last sector written.
  const uint64_t final_size = text_length > image.size() ? text_length : image.size();

  Region memory;
  TRY(memory, Rest(arena));
  if (memory.size < 4 * instar::ops::kExecutorChunk) return Fail(ResizeError::kScratchTooSmall);
  const Region executor_memory{memory.base, 2 * instar::ops::kExecutorChunk + 8192};
  const Region planner_memory{memory.base + executor_memory.size, memory.size - executor_memory.size};
  instar::ops::DeviceIo last_extent(table, k - 1);
  const instar::image_write::ImageReader reader{&last_extent, ReadDevice, last_extent.size()};
  const bool last_grows = growth.last_extent_sectors > last_sectors;
  // (The executor's arena is not the planner's: the planner gets the rest of the memory.)
  const auto grow_last = [&](Arena&, const instar::image_write::StepSink& sink, PlanError* error,
                             unsigned long long* detail) {
    Arena planner_arena(planner_memory.base, planner_memory.size);
    auto planned = instar::resize::PlanSparseExtentGrow(last, growth.last_extent_sectors, reader,
                                                        planner_arena, sink);
    if (planned.ok()) return true;
    *error = planned.error().code;
    *detail = planned.error().detail;
    return false;
  };
  // Dry run: everything read and checked before the first write.
  if (last_grows) {
    Arena unused(executor_memory.base, executor_memory.size);
    PlanError error = PlanError::kIoError;
    unsigned long long detail = 0;
    if (!grow_last(unused, instar::image_write::StepSink{}, &error, &detail)) {
      return Fail(FromPlan(error), detail);
    }
  }
  for (uint32_t i = 0; i < growth.new_extents; ++i) {
    instar::ops::DeviceIo extent(table, k + i);
    if (extent.size() != 0) return Fail(ResizeError::kBadConfig);
    TRY_STATUS(ApplyOn(table, extent, executor_memory,
                       [&](Arena& a, const instar::image_write::StepSink& sink, PlanError* error,
                           unsigned long long* detail) {
                         auto planned = instar::resize::PlanNewSparseExtent(
                             instar::resize::NewExtentSectors(growth, i), a, sink);
                         if (planned.ok()) return true;
                         *error = planned.error().code;
                         *detail = planned.error().detail;
                         return false;
                       }));
  }
  if (last_grows) TRY_STATUS(ApplyOn(table, last_extent, executor_memory, grow_last));
  if (!instar::image_write::Emit(executor.sink(), instar::image_write::StepKind::kWrite,
                                 instar::image_write::Phase::kHeader, 0, written, rewritten) ||
      (written > final_size &&
       !instar::image_write::Emit(executor.sink(), instar::image_write::StepKind::kSetSize,
                                  instar::image_write::Phase::kHeader, 0, final_size))) {
    return Fail(ResizeError::kIoError);
  }
  return {};
}

// qemu-img resizes no VMDK ("Image format driver does not support resize", after its generic
// checks); instar grows monolithicSparse and twoGbMaxExtentSparse and refuses the rest with
// qemu-img's message.
ResizeStatus ResizeVmdk(const instar::abi::CallTable* table, instar::ops::DeviceIo& image,
                        instar::ops::StepExecutor& executor, Arena& arena, ByteView head,
                        const ResizeConfig& config) {
  auto* descriptor = arena.New<instar::vmdk::Descriptor>();
  if (descriptor == nullptr) return Fail(ResizeError::kScratchTooSmall);
  instar::resize::VmdkImage vmdk;
  vmdk.file_size = image.size();
  if (instar::vmdk::LooksLikeDescriptor(head)) {
    // A descriptor file: twoGbMaxExtentSparse grows, the rest is sized for the checks only.
    if (image.size() > instar::vmdk::kMaxDescriptorBytes) {
      return Fail(ResizeError::kVmdkBadDescriptor, 0);
    }
    ByteView text;
    TRY(text, ReadRange(image, arena, 0, image.size()));
    auto parsed = instar::vmdk::ParseDescriptor(text, descriptor);
    if (!parsed.ok()) return Fail(ResizeError::kVmdkBadDescriptor, parsed.error().detail);
    g_result.old_size = descriptor->StatedSizeBytes();
    TRY_STATUS(ResolveSize(config, g_result.old_size));
    bool split_sparse = descriptor->extent_count != 0 &&
                        instar::resize::CreateTypeIs(
                            text.Sub(descriptor->keys.create_type.offset,
                                     descriptor->keys.create_type.length),
                            "twoGbMaxExtentSparse");
    for (uint32_t i = 0; i < descriptor->extent_count; ++i) {
      split_sparse &= descriptor->extents[i].type == instar::vmdk::ExtentType::kSparse;
    }
    if (!split_sparse || g_result.old_size > kMaxImageLength) {
      return Fail(ResizeError::kFormatCannotResize);
    }
    return GrowSplitVmdk(table, image, executor, arena, text, *descriptor, config);
  }
  auto sparse = instar::vmdk::ReadSparseHeader(
      head, image.size(),
      [&](uint64_t offset, uint64_t length, uint8_t* out) { return image.Read(offset, length, out).ok(); });
  if (!sparse.ok()) {
    return Fail(ResizeError::kVmdkBadHeader, static_cast<uint64_t>(sparse.error().code));
  }
  vmdk.header = sparse.value();
  vmdk.header_bytes = head.Sub(0, kSector);
  const instar::vmdk::SparseHeader& h = vmdk.header;
  if (h.capacity_sectors > kMaxImageLength / kSector) return Fail(ResizeError::kFormatCannotResize);
  g_result.old_size = h.capacity_sectors * kSector;
  if (h.descriptor_offset_sectors != 0 && h.descriptor_size_sectors != 0) {
    if (h.descriptor_size_sectors > instar::vmdk::kMaxDescriptorBytes / kSector ||
        h.descriptor_offset_sectors > UINT64_MAX / kSector) {
      return Fail(ResizeError::kVmdkBadDescriptor, 0);
    }
    TRY(vmdk.descriptor_text, ReadRange(image, arena, h.descriptor_offset_sectors * kSector,
                                        h.descriptor_size_sectors * kSector));
    auto parsed = instar::vmdk::ParseDescriptor(vmdk.descriptor_text, descriptor);
    if (!parsed.ok()) return Fail(ResizeError::kVmdkBadDescriptor, parsed.error().detail);
    vmdk.descriptor = descriptor;
  }
  TRY_STATUS(ResolveSize(config, g_result.old_size));
  const uint64_t total = g_result.new_size;
  if (total <= g_result.old_size ||
      config.preallocation != static_cast<uint32_t>(Preallocation::kOff)) {
    return Fail(ResizeError::kFormatCannotResize);
  }
  if (total % kSector != 0) return Fail(ResizeError::kSizeNotSectorMultiple);
  const instar::image_write::ImageReader reader{&image, ReadDevice, image.size()};
  Region memory;
  TRY(memory, Rest(arena));
  return DryRunThenApply(executor, memory,
                         [&](Arena& planner_arena, const instar::image_write::StepSink& sink,
                             PlanError* error, unsigned long long* detail) {
                           auto planned = instar::resize::PlanVmdkGrow(vmdk, total, reader,
                                                                       planner_arena, sink);
                           if (planned.ok()) return true;
                           *error = planned.error().code;
                           *detail = planned.error().detail;
                           return false;
                         });
}

ResizeStatus Resize(const instar::abi::CallTable* table, Arena& arena, const ResizeConfig& config) {
  if (config.preallocation > static_cast<uint32_t>(Preallocation::kFull) ||
      config.size_mode > static_cast<uint32_t>(instar::abi::ResizeSizeMode::kShrinkBy)) {
    return Fail(ResizeError::kBadConfig);
  }
  instar::ops::DeviceIo image(table, instar::abi::kOutputDevice);
  instar::ops::StepExecutor executor(table, image, arena);
  if (!executor.ready()) return Fail(ResizeError::kScratchTooSmall);
  ByteView probe_head;
  TRY(probe_head, ReadHead(image, arena, instar::probe::kProbeBytes));

  ImageFormat format = static_cast<ImageFormat>(config.requested_format);
  if (format == ImageFormat::kAuto) {
    const instar::probe::Format probed = instar::probe::ProbeFormat(probe_head);
    switch (probed) {
      case instar::probe::Format::kRaw: format = ImageFormat::kRaw; break;
      case instar::probe::Format::kQcow2: format = ImageFormat::kQcow2; break;
      case instar::probe::Format::kVmdk: format = ImageFormat::kVmdk; break;
      default: return Fail(ResizeError::kUnsupportedFormat, static_cast<uint64_t>(probed));
    }
  }
  g_result.format = static_cast<uint32_t>(format);
  ResizeStatus status;
  switch (format) {
    case ImageFormat::kRaw: status = ResizeRaw(table, image, executor, config); break;
    case ImageFormat::kQcow2: status = ResizeQcow2(image, executor, arena, config); break;
    case ImageFormat::kVmdk:
      status = ResizeVmdk(table, image, executor, arena, probe_head, config);
      break;
    case ImageFormat::kAuto: status = Fail(ResizeError::kBadConfig); break;
  }
  g_result.writes += executor.steps_applied();
  return status;
}

}  // namespace

int instar::ops::RunResize(const instar::abi::CallTable* table, Arena& scratch) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  const auto* config =
      static_cast<const ResizeConfig*>(table->get_operation_config(nullptr));
  g_result = {};
  g_result.magic = instar::abi::kResizeResultMagic;
  const ResizeStatus status = config->magic == instar::abi::kResizeConfigMagic
                                  ? Resize(table, scratch, *config)
                                  : ResizeStatus(Fail(ResizeError::kBadConfig));
  return FinishOperation(table, table->send_resize_result, &g_result, status);
}
