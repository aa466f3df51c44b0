#include "crates/check/vmdk_check.h"

#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/probe/probe.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::check {
namespace {

using abi::CheckError;
using base::Fail;

constexpr uint64_t kSector = 512;
constexpr uint32_t kGrainZeroed = 1;        // grain table entry of a zeroed grain
constexpr uint32_t kFlagZeroGrain = 1u << 2;  // the extent uses zeroed-grain entries

// The header that describes the extent: its own, or its footer's (VMware streamOptimized).
base::Result<vmdk::SparseHeader, CheckError> ReadHeader(const ImageAccess& io) {
  uint8_t raw[vmdk::kSparseHeaderSize];
  if (!io.Read(0, sizeof raw, raw)) return Fail(CheckError::kIoError);
  auto parsed = vmdk::ReadSparseHeader(
      base::ByteView(raw, sizeof raw), io.Size(),
      [&](uint64_t offset, uint64_t length, uint8_t* out) { return io.Read(offset, length, out); });
  if (!parsed.ok()) {
    return Fail(CheckError::kVmdkBadHeader, static_cast<uint64_t>(parsed.error().code));
  }
  return parsed.value();
}

// A sparse header that makes the file a descriptor file (see EmbeddedDescriptorFileOffset):
// its extents are other files when qemu accepts its create type; otherwise qemu refuses the
// open, and the host asks the info operation for qemu's message.
base::Status<CheckError> RefuseDescriptorFile(const ImageAccess& io, base::Arena& arena,
                                              uint64_t offset) {
  const uint64_t file_size = io.Size();
  const uint64_t length = file_size < vmdk::kMaxDescriptorBytes ? file_size
                                                                 : vmdk::kMaxDescriptorBytes;
  const uint64_t mark = arena.used();
  uint8_t* text = arena.Allocate(length, 8);
  if (text == nullptr) return Fail(CheckError::kScratchTooSmall);
  if (!io.Read(offset, length, text)) return Fail(CheckError::kVmdkBadHeader, 0);
  const base::ByteView view(text, length);
  const vmdk::TextRange type = vmdk::ReadDescriptorKeys(view).create_type;
  const bool separate_extents =
      type.present() && vmdk::IsDescriptorFileType(view.Sub(type.offset, type.length));
  arena.Rewind(mark);
  return Fail(separate_extents ? CheckError::kVmdkSeparateExtents : CheckError::kVmdkBadHeader,
              0);
}

// qemu reads a sparse extent's embedded descriptor at sector 1, 20 sectors long; a parent
// hint there is a backing file qemu opens before checking.
base::Status<CheckError> RefuseUncheckedParent(const ImageAccess& io, base::Arena& arena) {
  constexpr uint64_t kDescriptorOffset = kSector, kDescriptorBytes = 20 * kSector;
  const uint64_t file_size = io.Size();
  if (file_size <= kDescriptorOffset) return {};
  const uint64_t length = file_size - kDescriptorOffset < kDescriptorBytes
                              ? file_size - kDescriptorOffset
                              : kDescriptorBytes;
  const uint64_t mark = arena.used();
  uint8_t* text = arena.Allocate(length, 8);
  if (text == nullptr) return Fail(CheckError::kScratchTooSmall);
  if (!io.Read(kDescriptorOffset, length, text)) return Fail(CheckError::kIoError);
  const bool has_parent =
      vmdk::ReadDescriptorKeys(base::ByteView(text, length)).parent_file_name_hint.present();
  arena.Rewind(mark);
  if (has_parent) return Fail(CheckError::kHasBackingFile);
  return {};
}

}  // namespace

base::Status<CheckError> CheckVmdk(const ImageAccess& io, const FindingSink& sink,
                                   base::Arena& arena, abi::CheckRepair repair,
                                   bool backing_checked, abi::CheckResult* result) {
  uint8_t head[64];
  const uint64_t file_size = io.Size();
  if (!io.Read(0, sizeof head, head)) return Fail(CheckError::kIoError);
  if (vmdk::LooksLikeDescriptor(base::ByteView(head, file_size < sizeof head ? file_size : sizeof head))) {
    return Fail(CheckError::kVmdkSeparateExtents);
  }
  const uint64_t descriptor_file = vmdk::EmbeddedDescriptorFileOffset(
      base::ByteView(head, file_size < sizeof head ? file_size : sizeof head));
  if (descriptor_file != 0) return RefuseDescriptorFile(io, arena, descriptor_file);
  vmdk::SparseHeader h;
  TRY(h, ReadHeader(io));
  // qemu's block layer refuses a virtual size past its limit when it opens the image; it
  // multiplies in 64 bits, so a capacity that wraps around to a small size opens.
  if (h.capacity_sectors * kSector > vmdk::kMaxImageBytes) {
    return Fail(CheckError::kVmdkBadHeader, 0);
  }
  if (!backing_checked) {
    TRY_STATUS(RefuseUncheckedParent(io, arena));
  }
  // qemu opens a version 3 extent (changed block tracking) for writing only when it is
  // streamOptimized.
  if (repair != abi::CheckRepair::kNone && h.version == 3 &&
      h.compress_algorithm != vmdk::kCompressionDeflate) {
    return Fail(CheckError::kVmdkVersion3ReadOnly);
  }
  if (repair != abi::CheckRepair::kNone) {
    return Fail(CheckError::kNotSupportedByFormat, static_cast<uint64_t>(probe::Format::kVmdk));
  }
  result->magic = abi::kCheckResultMagic;
  result->format = static_cast<uint32_t>(abi::ImageFormat::kVmdk);

  const uint64_t gt_bytes = uint64_t{h.gtes_per_gt} * 4;
  uint8_t* gt = arena.Allocate(gt_bytes, 512);
  if (gt == nullptr) return Fail(CheckError::kScratchTooSmall, gt_bytes);
  uint64_t sectors_per_gt = 0, gd_offset = 0;
  if (!base::CheckedMul(h.grain_sectors, h.gtes_per_gt, &sectors_per_gt) ||
      !base::CheckedMul(h.gd_offset_sectors, kSector, &gd_offset)) {
    return Fail(CheckError::kVmdkBadHeader, 0);
  }
  const bool zero_grains = h.version >= 2 || (h.flags & kFlagZeroGrain) != 0;
  // qemu keeps the grain directory's size in 32 bits: a capacity past what it then covers has
  // sectors qemu cannot look up.
  const auto gd_entries =
      static_cast<uint32_t>(base::DivRoundUp(h.capacity_sectors, sectors_per_gt));
  for (uint64_t i = 0; i < gd_entries; ++i) {
    // Entries past the end of the file read as zeros: nothing more is allocated.
    if (gd_offset + i * 4 >= file_size) break;
    uint8_t raw[4];
    if (!io.Read(gd_offset + i * 4, 4, raw)) return Fail(CheckError::kIoError);
    const uint32_t gt_sector = base::LoadLe32(raw);
    if (gt_sector == 0) continue;
    if (!io.Read(uint64_t{gt_sector} * kSector, gt_bytes, gt)) return Fail(CheckError::kIoError);
    for (uint64_t j = 0; j < h.gtes_per_gt; ++j) {
      const uint64_t sector = i * sectors_per_gt + j * h.grain_sectors;
      if (sector >= h.capacity_sectors) break;
      const uint32_t grain = base::LoadLe32(gt + j * 4);
      if (grain == 0 || (zero_grains && grain == kGrainZeroed)) continue;
      if (uint64_t{grain} * kSector >= file_size) {
        sink.Emit(abi::FindingKind::kVmdkPastEof, sector);
        result->corruptions = 1;
        result->failure = static_cast<uint32_t>(abi::CheckFailure::kInvalidArgument);
        return {};
      }
    }
  }
  // qemu's walk reaches the first sector past the grain directory (its VMDK_ERROR, -1, is
  // returned as an errno).
  const uint64_t covered = uint64_t{gd_entries} * sectors_per_gt;
  if (covered < h.capacity_sectors) {
    sink.Emit(abi::FindingKind::kVmdkNoClusterOffset, covered);
    result->corruptions = 1;
    result->failure = static_cast<uint32_t>(abi::CheckFailure::kNotPermitted);
  }
  return {};
}

}  // namespace instar::check
