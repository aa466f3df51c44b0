// The info operation: reads input device 0, probes or checks its format, parses the header
// (and the vmdk descriptor), and sends an InfoResult, or an InfoError through send_error.
// Everything it reads is hostile: each read is bounded by the device size and a fixed cap.
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/image_format.h"
#include "abi/info.h"
#include "abi/memory_map.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/result.h"
#include "crates/freestanding/guest_image.h"
#include "crates/probe/probe.h"
#include "crates/qcow2/header.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"
#include "ops/common/device_reader.h"

namespace {

using instar::abi::ImageFormat;
using instar::abi::InfoError;
using instar::abi::InfoResult;
using instar::base::ByteView;
using instar::base::Error;
using instar::base::Fail;

using InfoStatus = instar::base::Status<InfoError>;

constexpr uint64_t kSector = 512;

InfoResult g_result;

// Reads [offset, offset+length) of the image, clipped to its size, into the arena.
instar::base::Result<ByteView, InfoError> ReadClipped(instar::ops::DeviceReader& image,
                                                      instar::base::Arena& arena,
                                                      uint64_t offset, uint64_t length) {
  if (offset >= image.size()) return ByteView();
  if (length > image.size() - offset) length = image.size() - offset;
  uint8_t* buffer = arena.Allocate(length, kSector);
  if (buffer == nullptr || !image.Read(offset, length, buffer).ok()) {
    return Fail(InfoError::kIoError);
  }
  return ByteView(buffer, length);
}

void CopyText(ByteView source, instar::qcow2::ByteRange range, char* out, uint32_t* out_len,
              uint32_t capacity) {
  const ByteView text = source.Sub(range.offset, range.length);
  uint32_t n = static_cast<uint32_t>(text.size());
  if (n > capacity) n = capacity;
  __builtin_memcpy(out, text.data(), n);
  out[n] = '\0';
  *out_len = n;
}

InfoError FromQcow2(instar::qcow2::HeaderError e) {
  using instar::qcow2::HeaderError;
  switch (e) {
    case HeaderError::kNotQcow2: return InfoError::kNotQcow2;
    case HeaderError::kTruncated: return InfoError::kTruncatedHeader;
    case HeaderError::kUnsupportedVersion: return InfoError::kUnsupportedQcow2Version;
    case HeaderError::kInvalidClusterSize: return InfoError::kInvalidClusterSize;
    case HeaderError::kHeaderTooShort: return InfoError::kHeaderTooShort;
    case HeaderError::kHeaderTooLong: return InfoError::kHeaderTooLong;
    case HeaderError::kRefcountOrderTooLarge: return InfoError::kRefcountOrderTooLarge;
    case HeaderError::kUnsupportedFeatures: return InfoError::kUnsupportedFeatures;
    case HeaderError::kBadEncryptionMethod: return InfoError::kBadEncryptionMethod;
    case HeaderError::kBackingFileTooLong: return InfoError::kBackingFileTooLong;
    case HeaderError::kBadExtension: return InfoError::kBadHeaderExtension;
  }
  return InfoError::kInvalidClusterSize;
}

InfoError FromSparse(instar::vmdk::SparseHeaderError e) {
  using instar::vmdk::SparseHeaderError;
  switch (e) {
    case SparseHeaderError::kNotSparse: return InfoError::kNotVmdk;
    case SparseHeaderError::kTruncated: return InfoError::kTruncatedHeader;
    case SparseHeaderError::kUnsupportedVersion: return InfoError::kVmdkUnsupportedVersion;
    case SparseHeaderError::kBadGrainSize: return InfoError::kVmdkBadGrainSize;
    case SparseHeaderError::kBadGrainTableSize: return InfoError::kVmdkBadGrainTableSize;
  }
  return InfoError::kNotVmdk;
}

InfoError FromDescriptor(instar::vmdk::DescriptorError e) {
  using instar::vmdk::DescriptorError;
  switch (e) {
    case DescriptorError::kNotDescriptor: return InfoError::kNotVmdk;
    case DescriptorError::kTooLarge: return InfoError::kVmdkDescriptorTooLarge;
    case DescriptorError::kBadExtentLine:
    case DescriptorError::kTooManyExtents:
    case DescriptorError::kBadNumber: return InfoError::kVmdkBadDescriptor;
  }
  return InfoError::kVmdkBadDescriptor;
}

InfoStatus DescribeQcow2(instar::ops::DeviceReader& image, instar::base::Arena& arena,
                         ByteView head) {
  auto parsed = instar::qcow2::ParseHeader(head);
  if (!parsed.ok()) return Fail(FromQcow2(parsed.error().code), parsed.error().detail);
  // Extensions and the backing file name may lie anywhere in the first cluster.
  if (parsed.value().cluster_size > head.size() && image.size() > head.size()) {
    TRY(head, ReadClipped(image, arena, 0, parsed.value().cluster_size));
    parsed = instar::qcow2::ParseHeader(head);
    if (!parsed.ok()) return Fail(FromQcow2(parsed.error().code), parsed.error().detail);
  }
  const instar::qcow2::Header& h = parsed.value();
  InfoResult& r = g_result;
  r.format = static_cast<uint32_t>(ImageFormat::kQcow2);
  r.virtual_size = h.size;
  r.cluster_size = static_cast<uint32_t>(h.cluster_size);
  r.format_version = h.version;
  r.refcount_bits = h.refcount_bits();
  r.compression_type = h.compression_type;
  r.encryption_method = h.crypt_method;
  r.incompatible_features = h.incompatible_features;
  r.compatible_features = h.compatible_features;
  r.autoclear_features = h.autoclear_features;
  using namespace instar::abi;
  if (h.incompatible_features & instar::qcow2::kIncompatDirty) r.flags |= kInfoDirty;
  if (h.incompatible_features & instar::qcow2::kIncompatCorrupt) r.flags |= kInfoCorrupt;
  if (h.incompatible_features & instar::qcow2::kIncompatExtendedL2) r.flags |= kInfoExtendedL2;
  if (h.compatible_features & instar::qcow2::kCompatLazyRefcounts) r.flags |= kInfoLazyRefcounts;
  if (h.crypt_method != 0) r.flags |= kInfoEncrypted;
  if (h.backing_file.length != 0) {
    r.flags |= kInfoHasBackingFile;
    CopyText(head, h.backing_file, r.backing_file, &r.backing_file_len, kMaxBackingFileBytes);
  }
  if (h.backing_format.length != 0) {
    r.flags |= kInfoHasBackingFormat;
    CopyText(head, h.backing_format, r.backing_format, &r.backing_format_len,
             kMaxFormatNameBytes);
  }
  return {};
}

InfoStatus DescribeVmdk(instar::ops::DeviceReader& image, instar::base::Arena& arena,
                        ByteView head) {
  InfoResult& r = g_result;
  r.format = static_cast<uint32_t>(ImageFormat::kVmdk);
  auto* descriptor = arena.New<instar::vmdk::Descriptor>();
  if (descriptor == nullptr) return Fail(InfoError::kIoError);
  ByteView text;
  if (instar::vmdk::LooksLikeDescriptor(head)) {
    if (image.size() > instar::vmdk::kMaxDescriptorBytes) {
      return Fail(InfoError::kVmdkDescriptorTooLarge, image.size());
    }
    TRY(text, ReadClipped(image, arena, 0, image.size()));
  } else {
    auto sparse = instar::vmdk::ParseSparseHeader(head);
    if (!sparse.ok()) return Fail(FromSparse(sparse.error().code), sparse.error().detail);
    const instar::vmdk::SparseHeader& h = sparse.value();
    r.format_version = h.version;
    r.cluster_size = static_cast<uint32_t>(h.grain_sectors * kSector);
    r.virtual_size = h.capacity_sectors > UINT64_MAX / kSector ? UINT64_MAX
                                                               : h.capacity_sectors * kSector;
    if (h.descriptor_offset_sectors != 0 && h.descriptor_size_sectors != 0) {
      if (h.descriptor_size_sectors > instar::vmdk::kMaxDescriptorBytes / kSector ||
          h.descriptor_offset_sectors > UINT64_MAX / kSector) {
        return Fail(InfoError::kVmdkDescriptorTooLarge, h.descriptor_size_sectors * kSector);
      }
      TRY(text, ReadClipped(image, arena, h.descriptor_offset_sectors * kSector,
                            h.descriptor_size_sectors * kSector));
    }
  }
  if (text.size() != 0) {
    auto status = instar::vmdk::ParseDescriptor(text, descriptor);
    if (!status.ok()) return Fail(FromDescriptor(status.error().code), status.error().detail);
    r.vmdk_cid = descriptor->cid;
    r.vmdk_parent_cid = descriptor->parent_cid;
    if (r.virtual_size == 0) r.virtual_size = descriptor->VirtualSizeBytes();
  }
  return {};
}

InfoStatus Describe(const instar::abi::CallTable* table, const instar::abi::InfoConfig& config) {
  instar::ops::DeviceReader image(table, 0);
  instar::base::Arena arena(reinterpret_cast<uint8_t*>(instar::abi::kScratchMemBase),
                            instar::abi::kScratchMemSize);
  ByteView head;
  TRY(head, ReadClipped(image, arena, 0, instar::probe::kProbeBytes));

  const auto requested = static_cast<ImageFormat>(config.requested_format);
  ImageFormat format = requested;
  if (requested == ImageFormat::kAuto) {
    const instar::probe::Format probed = instar::probe::ProbeFormat(head);
    switch (probed) {
      case instar::probe::Format::kRaw: format = ImageFormat::kRaw; break;
      case instar::probe::Format::kQcow2: format = ImageFormat::kQcow2; break;
      case instar::probe::Format::kVmdk: format = ImageFormat::kVmdk; break;
      default: return Fail(InfoError::kUnsupportedFormat, static_cast<uint64_t>(probed));
    }
  }
  switch (format) {
    case ImageFormat::kQcow2: return DescribeQcow2(image, arena, head);
    case ImageFormat::kVmdk: return DescribeVmdk(image, arena, head);
    case ImageFormat::kRaw:
      g_result.format = static_cast<uint32_t>(ImageFormat::kRaw);
      // The block layer works in whole sectors: a raw image's size rounds up to one.
      g_result.virtual_size = instar::base::DivRoundUp(image.size(), kSector) * kSector;
      return {};
    case ImageFormat::kAuto: break;
  }
  return Fail(InfoError::kBadConfig, config.requested_format);
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* table) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  const auto* config = static_cast<const instar::abi::InfoConfig*>(
      table->get_operation_config(nullptr));
  g_result.magic = instar::abi::kInfoResultMagic;
  InfoStatus status = config->magic == instar::abi::kInfoConfigMagic
                          ? Describe(table, *config)
                          : InfoStatus(Fail(InfoError::kBadConfig));
  if (!status.ok()) {
    table->send_error(static_cast<uint32_t>(status.error().code), status.error().detail);
    table->send_complete(1);
    return 1;
  }
  table->send_info_result(&g_result);
  table->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
