// The info operation for vmdk: the sparse header, the descriptor (embedded or a file of its
// own) and its extents. Extent files are opened by the host, never named by the guest: a
// first run reports the descriptor's extents; the host attaches them as kExtent devices and
// runs the operation again with kInfoConfigExtentsAttached to read their sparse headers.
#include "abi/info.h"
#include "abi/info_records.h"
#include "crates/base/checked.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"
#include "ops/info/info_context.h"

namespace instar::ops::info {
namespace {

using abi::InfoError;
using base::ByteView;
using base::Fail;

constexpr uint64_t kSector = 512;
// Where qemu reads a sparse image's embedded descriptor: sector 1, 20 sectors long.
constexpr uint64_t kEmbeddedDescriptorOffset = 512;
constexpr uint64_t kEmbeddedDescriptorBytes = 20 * 512;

InfoError FromSparse(vmdk::SparseHeaderError e) {
  using vmdk::SparseHeaderError;
  switch (e) {
    case SparseHeaderError::kNotSparse: return InfoError::kNotVmdk;
    case SparseHeaderError::kTruncated: return InfoError::kTruncatedHeader;
    case SparseHeaderError::kUnsupportedVersion: return InfoError::kVmdkUnsupportedVersion;
    case SparseHeaderError::kBadGrainSize: return InfoError::kVmdkBadGrainSize;
    case SparseHeaderError::kBadGrainTableSize: return InfoError::kVmdkBadGrainTableSize;
    case SparseHeaderError::kBadL1EntrySize: return InfoError::kVmdkBadL1EntrySize;
    case SparseHeaderError::kL1TooBig: return InfoError::kVmdkL1TooBig;
    case SparseHeaderError::kFileTruncated: return InfoError::kVmdkFileTruncated;
    case SparseHeaderError::kL1Unreadable: return InfoError::kVmdkL1Unreadable;
    case SparseHeaderError::kL1BackupUnreadable: return InfoError::kVmdkL1BackupUnreadable;
    case SparseHeaderError::kFooterUnreadable: return InfoError::kVmdkFooterUnreadable;
    case SparseHeaderError::kInvalidFooter: return InfoError::kVmdkInvalidFooter;
  }
  return InfoError::kNotVmdk;
}

InfoError FromDescriptor(vmdk::DescriptorError e) {
  using vmdk::DescriptorError;
  switch (e) {
    case DescriptorError::kBadExtentLine: return InfoError::kVmdkBadDescriptor;
    case DescriptorError::kTooManyExtents: return InfoError::kRecordsTooLarge;
  }
  return InfoError::kVmdkBadDescriptor;
}

uint32_t ExtentFlags(const vmdk::SparseHeader& h) {
  return abi::kInfoExtentSparse |
         (h.compress_algorithm == vmdk::kCompressionDeflate ? abi::kInfoExtentCompressed : 0u);
}

// The header that describes the sparse extent on `reader` (its own, or its footer's).
base::Result<vmdk::SparseHeader, vmdk::SparseHeaderError> SparseHeaderOf(InfoContext& ctx,
                                                                         DeviceIo& reader,
                                                                         ByteView head) {
  return vmdk::ReadSparseHeader(head, reader.size(),
                                [&](uint64_t offset, uint64_t length, uint8_t* out) {
                                  return ctx.ReadPaddedInto(reader, offset, length, out).ok();
                                });
}

// The sparse header of attached extent device `device`, for extent `index`.
base::Result<vmdk::SparseHeader, InfoError> ExtentHeader(InfoContext& ctx, uint32_t device,
                                                         uint32_t index) {
  DeviceIo reader(ctx.table, device);
  ByteView bytes;
  TRY(bytes, ctx.ReadPadded(reader, 0, vmdk::kSparseHeaderSize));
  auto parsed = SparseHeaderOf(ctx, reader, bytes);
  if (!parsed.ok()) {
    // qemu words an extent's header errors as it words the image's own.
    return Fail(parsed.error().code == vmdk::SparseHeaderError::kNotSparse
                    ? InfoError::kVmdkExtentHeaderInvalid
                    : FromSparse(parsed.error().code),
                parsed.error().code == vmdk::SparseHeaderError::kNotSparse
                    ? index
                    : parsed.error().detail);
  }
  return parsed.value();
}

InfoStatus SendExtents(InfoContext& ctx, ByteView text, const vmdk::Descriptor& d) {
  abi::InfoResult& r = ctx.result;
  const bool attached = (ctx.config.flags & abi::kInfoConfigExtentsAttached) != 0;
  if (attached && ctx.table->get_input_device_count() != d.extent_count + 1) {
    return Fail(InfoError::kBadConfig, ctx.config.flags);
  }
  for (uint32_t i = 0; i < d.extent_count; ++i) {
    const vmdk::Extent& e = d.extents[i];
    abi::InfoVmdkExtentRecord x{};
    x.sectors = e.sectors;
    const ByteView type_name = text.Sub(e.type_name.offset, e.type_name.length);
    const ByteView filename = text.Sub(e.filename.offset, e.filename.length);
    x.type_length = e.type_name.length;
    x.filename_length = e.filename.length;
    if (attached && (e.type == vmdk::ExtentType::kSparse ||
                     e.type == vmdk::ExtentType::kVmfsSparse)) {
      vmdk::SparseHeader h;
      TRY(h, ExtentHeader(ctx, i + 1, i));
      x.flags = ExtentFlags(h);
      x.cluster_size = static_cast<uint32_t>(h.grain_sectors * kSector);
      // qemu sizes a sparse extent by its own header, not by the descriptor's line.
      x.sectors = h.capacity_sectors;
    }
    // The image is as large as its extents together, within the block layer's limit.
    uint64_t bytes = 0;
    if (!base::CheckedMul(x.sectors, kSector, &bytes) ||
        !base::CheckedAdd(r.virtual_size, bytes, &r.virtual_size) ||
        r.virtual_size > vmdk::kMaxImageBytes) {
      return Fail(InfoError::kImageTooLarge);
    }
    if (i == 0) r.cluster_size = x.cluster_size;
    TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kVmdkExtent, &x, sizeof x, type_name,
                                  filename));
    ++r.extent_count;
  }
  return {};
}

// The keys qemu reads from either kind of descriptor: CIDs and the parent hint. A key qemu
// cannot read fails its open with EINVAL, after the extents are open: the host applies it.
InfoStatus ReportKeys(InfoContext& ctx, ByteView text, const vmdk::DescriptorKeys& keys) {
  abi::InfoResult& r = ctx.result;
  r.vmdk_cid = keys.cid;
  r.vmdk_parent_cid = keys.parent_cid;
  if (!keys.cids_readable || keys.hint_unterminated) r.flags |= abi::kInfoVmdkUnreadableKeys;
  if (keys.parent_file_name_hint.present()) {
    const ByteView hint =
        text.Sub(keys.parent_file_name_hint.offset, keys.parent_file_name_hint.length);
    const uint32_t n = static_cast<uint32_t>(hint.size());
    if (n > abi::kMaxBackingFileBytes) return Fail(InfoError::kBackingFileTooLong, n);
    __builtin_memcpy(r.backing_file, hint.data(), n);
    r.backing_file[n] = '\0';
    r.backing_file_len = n;
    r.flags |= abi::kInfoHasBackingFile;
  }
  return {};
}

InfoStatus DescribeDescriptorFile(InfoContext& ctx, uint64_t offset);

// A sparse extent opened as the image (monolithicSparse, streamOptimized): qemu takes the
// geometry from the header, the create type from its compression, and the keys from the
// descriptor it expects at sector 1, never the descriptor's extent lines. A header with no
// capacity but a descriptor offset is, to qemu, a descriptor file at that offset.
InfoStatus DescribeSparse(InfoContext& ctx, ByteView head) {
  abi::InfoResult& r = ctx.result;
  const uint64_t descriptor_file = vmdk::EmbeddedDescriptorFileOffset(head);
  if (descriptor_file != 0) return DescribeDescriptorFile(ctx, descriptor_file);
  auto parsed = SparseHeaderOf(ctx, ctx.image, head);
  if (!parsed.ok()) return Fail(FromSparse(parsed.error().code), parsed.error().detail);
  const vmdk::SparseHeader& h = parsed.value();
  if (h.capacity_sectors > vmdk::kMaxImageBytes / kSector) return Fail(InfoError::kImageTooLarge);
  r.format_version = h.version;
  r.cluster_size = static_cast<uint32_t>(h.grain_sectors * kSector);
  r.virtual_size = h.capacity_sectors * kSector;
  ByteView text;
  TRY(text, ctx.ReadPadded(kEmbeddedDescriptorOffset, kEmbeddedDescriptorBytes));
  TRY_STATUS(ReportKeys(ctx, text, vmdk::ReadDescriptorKeys(text)));
  const bool stream = h.compress_algorithm == vmdk::kCompressionDeflate;
  const char* create_type = stream ? "streamOptimized" : "monolithicSparse";
  uint32_t length = 0;
  while (create_type[length] != '\0') ++length;
  TRY_STATUS(ctx.records.AppendText(
      abi::InfoRecordType::kVmdkCreateType,
      ByteView(reinterpret_cast<const uint8_t*>(create_type), length)));
  // The image is its own (only) extent: qemu names it after the image, with no type.
  abi::InfoVmdkExtentRecord x{};
  x.sectors = h.capacity_sectors;
  x.flags = ExtentFlags(h);
  x.cluster_size = r.cluster_size;
  TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kVmdkExtent, &x, sizeof x));
  ++r.extent_count;
  return {};
}

// A descriptor file: its extents are other files, which the host opens. The descriptor starts
// at `offset` (a sparse header with no capacity but a descriptor defers to it).
InfoStatus DescribeDescriptorFile(InfoContext& ctx, uint64_t offset) {
  abi::InfoResult& r = ctx.result;
  if (ctx.image.size() == 0) return Fail(InfoError::kVmdkFileTooSmall);
  r.flags |= abi::kInfoVmdkDescriptorFile;
  ByteView text;
  TRY(text, ctx.ReadPadded(offset, ctx.image.size() < vmdk::kMaxDescriptorBytes
                                  ? ctx.image.size()
                                  : vmdk::kMaxDescriptorBytes));
  // qemu judges the create type before it scans the extent lines.
  const vmdk::DescriptorKeys keys = vmdk::ReadDescriptorKeys(text);
  const vmdk::TextRange type = keys.create_type;
  TRY_STATUS(ctx.records.AppendText(abi::InfoRecordType::kVmdkCreateType,
                                    text.Sub(type.offset, type.length)));
  if (!type.present()) return Fail(InfoError::kNotVmdk);
  if (!vmdk::IsDescriptorFileType(text.Sub(type.offset, type.length))) {
    return Fail(InfoError::kVmdkUnsupportedCreateType);
  }
  auto* d = ctx.arena.New<vmdk::Descriptor>();
  if (d == nullptr) return Fail(InfoError::kIoError);
  auto status = vmdk::ParseDescriptor(text, d);
  if (!status.ok()) {
    if (status.error().code == vmdk::DescriptorError::kBadExtentLine) {
      TRY_STATUS(ctx.records.AppendText(abi::InfoRecordType::kErrorText,
                                        text.Sub(d->bad_line.offset, d->bad_line.length)));
    }
    return Fail(FromDescriptor(status.error().code));
  }
  if (d->extent_count == 0) return Fail(InfoError::kVmdkInvalidArgument);
  TRY_STATUS(ReportKeys(ctx, text, d->keys));
  return SendExtents(ctx, text, *d);
}

}  // namespace

InfoStatus DescribeVmdk(InfoContext& ctx, ByteView head) {
  ctx.result.format = static_cast<uint32_t>(abi::ImageFormat::kVmdk);
  // qemu tells the two kinds apart by the sparse magic alone.
  uint32_t magic = 0;
  head.Le32(0, &magic);
  return magic == vmdk::kSparseMagic ? DescribeSparse(ctx, head) : DescribeDescriptorFile(ctx, 0);
}

}  // namespace instar::ops::info
