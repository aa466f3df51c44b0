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
constexpr uint16_t kCompressionDeflate = 1;
// The block layer's largest image (INT64_MAX aligned down to 1 GiB), as for qcow2.
constexpr uint64_t kMaxImageBytes = 0x7FFFFFFFC0000000ull;

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
  }
  return InfoError::kNotVmdk;
}

InfoError FromDescriptor(vmdk::DescriptorError e) {
  using vmdk::DescriptorError;
  switch (e) {
    case DescriptorError::kNotDescriptor: return InfoError::kNotVmdk;
    case DescriptorError::kTooLarge: return InfoError::kVmdkDescriptorTooLarge;
    case DescriptorError::kBadExtentLine:
    case DescriptorError::kTooManyExtents:
    case DescriptorError::kBadNumber: return InfoError::kVmdkBadDescriptor;
  }
  return InfoError::kVmdkBadDescriptor;
}

uint32_t ExtentFlags(const vmdk::SparseHeader& h) {
  return abi::kInfoExtentSparse |
         (h.compress_algorithm == kCompressionDeflate ? abi::kInfoExtentCompressed : 0u);
}

// The sparse header of attached extent device `device`, for extent `index`.
base::Result<vmdk::SparseHeader, InfoError> ExtentHeader(InfoContext& ctx, uint32_t device,
                                                         uint32_t index) {
  DeviceReader reader(ctx.table, device);
  ByteView bytes;
  TRY(bytes, ctx.ReadPadded(reader, 0, vmdk::kSparseHeaderSize));
  auto parsed = vmdk::ParseSparseHeader(bytes);
  if (!parsed.ok()) return Fail(InfoError::kVmdkExtentHeaderInvalid, index);
  return parsed.value();
}

// The create types qemu opens from a descriptor file of their own.
bool DescriptorFileType(ByteView text, const vmdk::TextRange& type) {
  static constexpr const char* kTypes[] = {"monolithicFlat", "vmfs", "vmfsSparse", "seSparse",
                                           "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"};
  const ByteView value = text.Sub(type.offset, type.length);
  for (const char* t : kTypes) {
    uint32_t n = 0;
    while (t[n] != '\0') ++n;
    if (n == value.size() && __builtin_memcmp(t, value.data(), n) == 0) return true;
  }
  return false;
}

InfoStatus SendExtents(InfoContext& ctx, ByteView text, const vmdk::Descriptor& d,
                       const vmdk::SparseHeader* embedded) {
  abi::InfoResult& r = ctx.result;
  const bool attached = (ctx.config.flags & abi::kInfoConfigExtentsAttached) != 0;
  if (attached && ctx.table->get_input_device_count() != d.extent_count + 1) {
    return Fail(InfoError::kBadConfig, ctx.config.flags);
  }
  for (uint32_t i = 0; i < d.extent_count; ++i) {
    const vmdk::Extent& e = d.extents[i];
    abi::InfoVmdkExtentRecord x{};
    x.sectors = e.sectors;
    ByteView type_name, filename;
    if (embedded != nullptr) {
      // The image is its own (only) extent: qemu names it after the image, with no type.
      x.flags = ExtentFlags(*embedded);
      x.cluster_size = static_cast<uint32_t>(embedded->grain_sectors * kSector);
      x.sectors = embedded->capacity_sectors;
    } else {
      type_name = text.Sub(e.type_name.offset, e.type_name.length);
      filename = text.Sub(e.filename.offset, e.filename.length);
      x.type_length = e.type_name.length;
      x.filename_length = e.filename.length;
      if (attached && (e.type == vmdk::ExtentType::kSparse ||
                       e.type == vmdk::ExtentType::kVmfsSparse)) {
        vmdk::SparseHeader h;
        TRY(h, ExtentHeader(ctx, i + 1, i));
        x.flags = ExtentFlags(h);
        x.cluster_size = static_cast<uint32_t>(h.grain_sectors * kSector);
      }
    }
    if (i == 0) r.cluster_size = x.cluster_size;
    TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kVmdkExtent, &x, sizeof x, type_name,
                                  filename));
    ++r.extent_count;
  }
  return {};
}

}  // namespace

InfoStatus DescribeVmdk(InfoContext& ctx, ByteView head) {
  abi::InfoResult& r = ctx.result;
  r.format = static_cast<uint32_t>(abi::ImageFormat::kVmdk);
  auto* descriptor = ctx.arena.New<vmdk::Descriptor>();
  if (descriptor == nullptr) return Fail(InfoError::kIoError);
  ByteView text;
  vmdk::SparseHeader sparse;
  const bool is_text = vmdk::LooksLikeDescriptor(head);
  if (is_text) {
    if (ctx.image.size() > vmdk::kMaxDescriptorBytes) {
      return Fail(InfoError::kVmdkDescriptorTooLarge, ctx.image.size());
    }
    r.flags |= abi::kInfoVmdkDescriptorFile;
    TRY(text, ctx.ReadPadded(0, ctx.image.size()));
  } else {
    auto parsed = vmdk::ParseSparseHeader(head);
    if (!parsed.ok()) return Fail(FromSparse(parsed.error().code), parsed.error().detail);
    sparse = parsed.value();
    // qemu wants the file to reach at least the first grain.
    if (sparse.overhead_sectors > ctx.image.size() / kSector) {
      return Fail(InfoError::kVmdkFileTruncated,
                  sparse.overhead_sectors > UINT64_MAX / kSector
                      ? UINT64_MAX
                      : sparse.overhead_sectors * kSector);
    }
    r.format_version = sparse.version;
    r.cluster_size = static_cast<uint32_t>(sparse.grain_sectors * kSector);
    if (sparse.capacity_sectors > kMaxImageBytes / kSector) {
      return Fail(InfoError::kImageTooLarge);
    }
    r.virtual_size = sparse.capacity_sectors * kSector;
    if (sparse.descriptor_offset_sectors != 0 && sparse.descriptor_size_sectors != 0) {
      if (sparse.descriptor_size_sectors > vmdk::kMaxDescriptorBytes / kSector ||
          sparse.descriptor_offset_sectors > UINT64_MAX / kSector) {
        return Fail(InfoError::kVmdkDescriptorTooLarge,
                    sparse.descriptor_size_sectors > UINT64_MAX / kSector
                        ? UINT64_MAX
                        : sparse.descriptor_size_sectors * kSector);
      }
      TRY(text, ctx.ReadPadded(sparse.descriptor_offset_sectors * kSector,
                               sparse.descriptor_size_sectors * kSector));
    }
  }
  if (text.size() == 0) return {};
  auto status = vmdk::ParseDescriptor(text, descriptor);
  if (!status.ok()) return Fail(FromDescriptor(status.error().code), status.error().detail);
  const vmdk::Descriptor& d = *descriptor;
  r.vmdk_cid = d.cid;
  r.vmdk_parent_cid = d.parent_cid;
  if (is_text) r.virtual_size = d.VirtualSizeBytes();
  if (d.parent_file_name_hint.present()) {
    const ByteView hint = text.Sub(d.parent_file_name_hint.offset, d.parent_file_name_hint.length);
    uint32_t n = static_cast<uint32_t>(hint.size());
    if (n > abi::kMaxBackingFileBytes) return Fail(InfoError::kBackingFileTooLong, n);
    __builtin_memcpy(r.backing_file, hint.data(), n);
    r.backing_file[n] = '\0';
    r.backing_file_len = n;
    r.flags |= abi::kInfoHasBackingFile;
  }
  TRY_STATUS(ctx.records.AppendText(abi::InfoRecordType::kVmdkCreateType,
                                    text.Sub(d.create_type.offset, d.create_type.length)));
  if (is_text) {
    if (!d.create_type.present()) return Fail(InfoError::kNotVmdk);
    if (!DescriptorFileType(text, d.create_type)) {
      return Fail(InfoError::kVmdkUnsupportedCreateType);
    }
    if (d.extent_count == 0) return Fail(InfoError::kVmdkInvalidArgument);
    // qemu refuses this only after opening the extents, which the host does.
    if (!d.has_parent_cid) r.flags |= abi::kInfoVmdkNoParentCid;
  }
  return SendExtents(ctx, text, d, is_text ? nullptr : &sparse);
}

}  // namespace instar::ops::info
