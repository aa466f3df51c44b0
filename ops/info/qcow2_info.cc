// The info operation for qcow2: header, extensions, snapshot table, bitmap directory and the
// LUKS header, as qemu-img info reports them. Every table read is bounded by a fixed cap.
#include "abi/info.h"
#include "abi/info_records.h"
#include "crates/base/checked.h"
#include "crates/luks/header.h"
#include "crates/qcow2/bitmaps.h"
#include "crates/qcow2/feature_names.h"
#include "crates/qcow2/header.h"
#include "crates/qcow2/snapshots.h"
#include "ops/info/info_context.h"

namespace instar::ops::info {
namespace {

using abi::InfoError;
using base::ByteView;
using base::Fail;

constexpr uint64_t kHeadProbeBytes = 4096;

InfoError FromHeader(qcow2::HeaderError e) {
  using qcow2::HeaderError;
  switch (e) {
    case HeaderError::kNotQcow2: return InfoError::kNotQcow2;
    case HeaderError::kUnsupportedVersion: return InfoError::kUnsupportedQcow2Version;
    case HeaderError::kInvalidClusterSize: return InfoError::kInvalidClusterSize;
    case HeaderError::kHeaderTooShort: return InfoError::kHeaderTooShort;
    case HeaderError::kHeaderTooLong: return InfoError::kHeaderTooLong;
    case HeaderError::kInvalidBackingFileOffset: return InfoError::kInvalidBackingFileOffset;
    case HeaderError::kUnsupportedFeatures: return InfoError::kUnsupportedFeatures;
    case HeaderError::kRefcountOrderTooLarge: return InfoError::kRefcountOrderTooLarge;
    case HeaderError::kCompressionTypeInvalid: return InfoError::kCompressionTypeInvalid;
    case HeaderError::kCompressionBitMissing: return InfoError::kCompressionBitMissing;
    case HeaderError::kCompressionBitSet: return InfoError::kCompressionBitSet;
    case HeaderError::kBadEncryptionMethod: return InfoError::kBadEncryptionMethod;
    case HeaderError::kRefcountTableTooLarge: return InfoError::kRefcountTableTooLarge;
    case HeaderError::kNoRefcountTable: return InfoError::kNoRefcountTable;
    case HeaderError::kRefcountTableOffsetInvalid: return InfoError::kRefcountTableOffsetInvalid;
    case HeaderError::kSnapshotTableTooLarge: return InfoError::kSnapshotTableTooLarge;
    case HeaderError::kSnapshotTableOffsetInvalid: return InfoError::kSnapshotTableOffsetInvalid;
    case HeaderError::kL1TableTooLarge: return InfoError::kL1TableTooLarge;
    case HeaderError::kImageTooBig: return InfoError::kImageTooBig;
    case HeaderError::kL1TableTooSmall: return InfoError::kL1TableTooSmall;
    case HeaderError::kL1TableOffsetInvalid: return InfoError::kL1TableOffsetInvalid;
    case HeaderError::kL1TableUnreadable: return InfoError::kL1TableUnreadable;
    case HeaderError::kBadExtension: return InfoError::kBadHeaderExtension;
    case HeaderError::kBackingFormatTooLong: return InfoError::kBackingFormatTooLong;
    case HeaderError::kCryptoExtensionUnexpected: return InfoError::kCryptoExtensionUnexpected;
    case HeaderError::kCryptoExtensionSize: return InfoError::kCryptoExtensionSize;
    case HeaderError::kCryptoHeaderUnaligned: return InfoError::kCryptoHeaderUnaligned;
    case HeaderError::kCryptoHeaderMissing: return InfoError::kCryptoHeaderMissing;
    case HeaderError::kBackingFileTooLong: return InfoError::kBackingFileTooLong;
    case HeaderError::kImageTooLarge: return InfoError::kImageTooLarge;
  }
  return InfoError::kNotQcow2;
}

// Copies a header string the way qemu reads it: as a C string, so it ends at its first NUL.
// Returns its length.
uint32_t CopyText(ByteView source, qcow2::ByteRange range, char* out, uint32_t capacity) {
  const ByteView text = source.Sub(range.offset, range.length);
  uint32_t n = 0;
  while (n < text.size() && n < capacity && text.data()[n] != 0) {
    out[n] = static_cast<char>(text.data()[n]);
    ++n;
  }
  out[n] = '\0';
  return n;
}

// Names the unknown incompatible bits the feature name table knows, for qemu's message.
InfoStatus SendFeatureNames(InfoContext& ctx, ByteView head, uint64_t unknown) {
  const qcow2::ByteRange where = qcow2::FindFeatureNameTable(head);
  const ByteView table = head.Sub(where.offset, where.length);
  const uint64_t count = qcow2::FeatureNameCount(table);
  for (uint64_t i = 0; i < count && ctx.result.feature_name_count < abi::kMaxInfoFeatureNames;
       ++i) {
    const qcow2::FeatureName f = qcow2::FeatureNameAt(table, i);
    if (f.type != abi::kFeatureIncompatible || f.bit >= 64 ||
        (unknown & (uint64_t{1} << f.bit)) == 0) {
      continue;
    }
    abi::InfoFeatureNameRecord r{};
    r.feature_type = f.type;
    r.bit = f.bit;
    r.name_length = f.name_length;
    TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kFeatureName, &r, sizeof r,
                                  table.Sub(f.name_offset, f.name_length)));
    ++ctx.result.feature_name_count;
  }
  return {};
}

// A window sliding over a table that starts at `offset` of the image, in one fixed buffer, so
// tables larger than the scratch region (qemu allows 64 MiB) can be walked entry by entry.
class TableWindow {
 public:
  static constexpr uint64_t kFirstLoadBytes = 64 * 1024;
  static constexpr uint64_t kWindowBytes = 1u << 20;

  TableWindow(InfoContext& ctx, uint64_t offset)
      : ctx_(ctx), offset_(offset), buffer_(ctx.arena.Allocate(kWindowBytes, 512)) {}

  // [start, end) of the table (start <= end); an entry larger than the window is refused.
  base::Result<ByteView, InfoError> Get(uint64_t start, uint64_t end) {
    if (buffer_ == nullptr || end - start > kWindowBytes) return Fail(InfoError::kRecordsTooLarge);
    if (start < base_ || end > base_ + loaded_) {
      // Small tables fit the first, small read; a table that outgrows it gets whole windows.
      const uint64_t length =
          loaded_ == 0 && end - start <= kFirstLoadBytes ? kFirstLoadBytes : kWindowBytes;
      uint64_t at = 0;
      if (!base::CheckedAdd(offset_, start, &at)) return Fail(InfoError::kIoError);
      TRY_STATUS(ctx_.ReadPaddedInto(ctx_.image, at, length, buffer_));
      base_ = start;
      loaded_ = length;
    }
    return ByteView(buffer_ + (start - base_), end - start);
  }

 private:
  InfoContext& ctx_;
  uint64_t offset_;
  uint8_t* buffer_;
  uint64_t base_ = 0;
  uint64_t loaded_ = 0;
};

InfoStatus SendSnapshots(InfoContext& ctx, const qcow2::Header& h) {
  TableWindow window(ctx, h.snapshots_offset);
  uint64_t at = 0;
  for (uint32_t i = 0; i < h.nb_snapshots; ++i) {
    ByteView fixed;
    TRY(fixed, window.Get(at, at + qcow2::kSnapshotFixedBytes));
    uint32_t extra = 0;
    uint16_t id_size = 0, name_size = 0;
    fixed.Be16(12, &id_size);
    fixed.Be16(14, &name_size);
    fixed.Be32(36, &extra);
    if (extra > qcow2::kMaxSnapshotExtraData) return Fail(InfoError::kSnapshotExtraTooLarge, i);
    // Bounded: 40 + 1024 + 2 * 65535 bytes.
    const uint64_t length = qcow2::kSnapshotFixedBytes + extra + id_size + name_size;
    if (at + length > qcow2::kMaxSnapshotTableBytes) {
      return Fail(InfoError::kSnapshotTableTooLarge);
    }
    ByteView entry;
    TRY(entry, window.Get(at, at + length));
    auto parsed = qcow2::ParseSnapshot(entry, 0);
    if (!parsed.ok()) return Fail(InfoError::kSnapshotTableTooLarge);
    const qcow2::Snapshot& s = parsed.value();
    abi::InfoSnapshotRecord r{};
    r.vm_state_size = s.vm_state_size;
    r.vm_clock_nsec = s.vm_clock_nsec;
    r.icount = s.icount;
    r.date_sec = s.date_sec;
    r.date_nsec = s.date_nsec;
    r.id_length = s.id_length;
    r.name_length = s.name_length;
    TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kSnapshot, &r, sizeof r,
                                  entry.Sub(s.id_offset, s.id_length),
                                  entry.Sub(s.name_offset, s.name_length)));
    ++ctx.result.snapshot_count;
    at += s.entry_size;
  }
  return {};
}

InfoError FromLuksCheck(luks::CheckError e) {
  using luks::CheckError;
  switch (e) {
    case CheckError::kPayloadOverlapsHeader: return InfoError::kLuksPayloadOverlapsHeader;
    case CheckError::kSlotState: return InfoError::kLuksSlotState;
    case CheckError::kSlotStripes: return InfoError::kLuksSlotStripes;
    case CheckError::kSlotOverlapsHeader: return InfoError::kLuksSlotOverlapsHeader;
    case CheckError::kSlotsOverlap: return InfoError::kLuksSlotsOverlap;
    case CheckError::kModeFormat: return InfoError::kLuksModeFormat;
    case CheckError::kMode: return InfoError::kLuksMode;
    case CheckError::kIvgen: return InfoError::kLuksIvgen;
    case CheckError::kIvgenHash: return InfoError::kLuksIvgenHash;
    case CheckError::kCipher: return InfoError::kLuksCipher;
    case CheckError::kHash: return InfoError::kLuksHash;
  }
  return InfoError::kLuksNotLuks;
}

// The LUKS header: its summary goes out as a record first, so the host can word a refusal
// with its names.
InfoStatus SendLuks(InfoContext& ctx, const qcow2::Header& h) {
  if (h.crypto_header.length < luks::kHeaderBytes) {
    return Fail(InfoError::kCryptoOutsideExtension);
  }
  if (h.crypto_header.offset > qcow2::kMaxImageBytes - luks::kHeaderBytes) {
    return Fail(InfoError::kCryptoHeaderUnreadable);
  }
  ByteView bytes;
  TRY(bytes, ctx.ReadPadded(h.crypto_header.offset, luks::kHeaderBytes));
  auto parsed = luks::ParseHeader(bytes);
  if (!parsed.ok()) {
    return Fail(parsed.error().code == luks::HeaderError::kUnsupportedVersion
                    ? InfoError::kLuksVersion
                    : InfoError::kLuksNotLuks,
                parsed.error().detail);
  }
  const luks::Header& l = parsed.value();
  abi::InfoLuksRecord r{};
  __builtin_memcpy(r.cipher_name, l.cipher_name, sizeof r.cipher_name);
  __builtin_memcpy(r.cipher_mode, l.cipher_mode, sizeof r.cipher_mode);
  __builtin_memcpy(r.hash_spec, l.hash_spec, sizeof r.hash_spec);
  __builtin_memcpy(r.uuid, l.uuid, sizeof r.uuid);
  r.payload_offset_sectors = l.payload_offset;
  r.key_bytes = l.key_bytes;
  r.master_key_iterations = l.master_key_iterations;
  for (uint32_t i = 0; i < abi::kLuksKeySlots; ++i) {
    r.slots[i] = {l.slots[i].state == luks::kSlotActive ? 1u : 0u, l.slots[i].iterations,
                  l.slots[i].key_material_offset, l.slots[i].stripes};
  }
  TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kLuks, &r, sizeof r));
  auto checked = luks::CheckHeader(l);
  if (!checked.ok()) {
    const InfoError error = FromLuksCheck(checked.error().code);
    uint64_t detail = checked.error().detail;
    if (error == InfoError::kLuksSlotsOverlap) {
      TRY_STATUS(ctx.records.AppendErrorValue(detail % luks::kKeySlots));
      detail /= luks::kKeySlots;
    }
    return Fail(error, detail);
  }
  return {};
}

InfoError FromBitmaps(qcow2::BitmapError e) {
  using qcow2::BitmapError;
  switch (e) {
    case BitmapError::kLength: return InfoError::kBitmapExtensionLength;
    case BitmapError::kReserved: return InfoError::kBitmapExtensionReserved;
    case BitmapError::kEmpty: return InfoError::kBitmapExtensionEmpty;
    case BitmapError::kTooMany: return InfoError::kBitmapExtensionTooMany;
    case BitmapError::kDirectoryOffset: return InfoError::kBitmapDirectoryOffset;
    case BitmapError::kDirectoryTooLarge: return InfoError::kBitmapDirectoryTooLarge;
    case BitmapError::kBroken: return InfoError::kBitmapDirectoryBroken;
  }
  return InfoError::kBitmapDirectoryBroken;
}

// The bitmaps extension, checked when the header's extensions are read (before the
// encryption header and the snapshot table, as qemu does). Without the autoclear bit the
// extension is stale: qemu warns and ignores it.
base::Result<qcow2::BitmapsExtension, InfoError> ReadBitmapsExtension(InfoContext& ctx,
                                                                      const qcow2::Header& h,
                                                                      ByteView head) {
  if (h.bitmaps_extension.offset == 0) return qcow2::BitmapsExtension{};
  if ((h.autoclear_features & qcow2::kAutoclearBitmaps) == 0) {
    ctx.result.flags |= abi::kInfoStaleBitmaps;
    return qcow2::BitmapsExtension{};
  }
  auto ext = qcow2::ParseBitmapsExtension(
      head.Sub(h.bitmaps_extension.offset, h.bitmaps_extension.length), h.cluster_size);
  if (!ext.ok()) return Fail(FromBitmaps(ext.error().code), ext.error().detail);
  return ext.value();
}

// The bitmap directory, walked to its end as qemu does: every entry must fit and satisfy
// qemu's constraints, and the count must match the extension's.
InfoStatus SendBitmaps(InfoContext& ctx, const qcow2::Header& h,
                       const qcow2::BitmapsExtension& ext) {
  if (ext.count == 0) return {};
  if (ext.directory_offset > qcow2::kMaxImageBytes ||
      ext.directory_size > qcow2::kMaxImageBytes - ext.directory_offset) {
    return Fail(InfoError::kBitmapDirectoryUnreadable);
  }
  TableWindow window(ctx, ext.directory_offset);
  uint32_t found = 0;
  // Each entry takes at least 24 bytes, so the walk is bounded by the directory's size.
  for (uint64_t at = 0; at < ext.directory_size;) {
    const uint64_t left = ext.directory_size - at;
    if (left < qcow2::kBitmapEntryFixedBytes) return Fail(InfoError::kBitmapDirectoryBroken);
    ByteView fixed;
    TRY(fixed, window.Get(at, at + qcow2::kBitmapEntryFixedBytes));
    uint16_t name_size = 0;
    uint32_t extra = 0;
    fixed.Be16(18, &name_size);
    fixed.Be32(20, &extra);
    const uint64_t length = (uint64_t{qcow2::kBitmapEntryFixedBytes} + extra + name_size + 7) &
                            ~uint64_t{7};
    if (length > left) return Fail(InfoError::kBitmapDirectoryBroken);
    ByteView bytes;
    TRY(bytes, window.Get(at, at + length));
    auto entry = qcow2::ParseBitmapEntry(bytes, 0);
    if (!entry.ok()) return Fail(FromBitmaps(entry.error().code));
    const qcow2::BitmapEntry& b = entry.value();
    if (++found > ext.count) return Fail(InfoError::kBitmapsExtra);
    abi::InfoBitmapRecord r{};
    r.flags = b.flags & (qcow2::kBitmapInUse | qcow2::kBitmapAuto);
    r.granularity_bits = b.granularity_bits;
    r.name_length = b.name_length;
    TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kBitmap, &r, sizeof r,
                                  bytes.Sub(b.name_offset, b.name_length)));
    // The record just sent names the bitmap for the host's message.
    if (!qcow2::SatisfiesConstraints(b, h.cluster_size)) {
      return Fail(InfoError::kBitmapConstraints);
    }
    ++ctx.result.bitmap_count;
    at += length;
  }
  if (found < ext.count) return Fail(InfoError::kBitmapsMissing);
  return {};
}

}  // namespace

InfoStatus DescribeQcow2(InfoContext& ctx, ByteView head) {
  // The header and its extensions fill at most the first cluster; read all of it (zero-padded
  // past the end of the file) once the cluster size is known to be larger than the probe.
  TRY(head, ctx.ReadPadded(0, kHeadProbeBytes));
  uint32_t cluster_bits = 0;
  head.Be32(20, &cluster_bits);
  if (cluster_bits > 12 && cluster_bits <= qcow2::kMaxClusterBits) {
    TRY(head, ctx.ReadPadded(0, uint64_t{1} << cluster_bits));
  }
  auto parsed = qcow2::ParseHeader(head, (ctx.config.flags & abi::kInfoConfigOpenAsCheck) != 0
                                             ? qcow2::OpenMode::kCheck
                                             : qcow2::OpenMode::kNormal);
  if (!parsed.ok()) {
    if (parsed.error().code == qcow2::HeaderError::kUnsupportedFeatures) {
      TRY_STATUS(SendFeatureNames(ctx, head, parsed.error().detail));
    }
    if (parsed.error().code == qcow2::HeaderError::kCryptoHeaderUnaligned) {
      TRY_STATUS(ctx.records.AppendErrorValue(uint64_t{1} << cluster_bits));
    }
    return Fail(FromHeader(parsed.error().code), parsed.error().detail);
  }
  const qcow2::Header& h = parsed.value();
  abi::InfoResult& r = ctx.result;
  r.format = static_cast<uint32_t>(abi::ImageFormat::kQcow2);
  // The block layer counts whole sectors.
  r.virtual_size = h.size & ~uint64_t{511};
  r.cluster_size = static_cast<uint32_t>(h.cluster_size);
  r.format_version = h.version;
  r.refcount_bits = h.refcount_bits();
  r.compression_type = h.compression_type;
  r.encryption_method = h.crypt_method;
  r.incompatible_features = h.incompatible_features;
  r.compatible_features = h.compatible_features;
  r.autoclear_features = h.autoclear_features;
  if (h.incompatible_features & qcow2::kIncompatDirty) r.flags |= abi::kInfoDirty;
  if (h.incompatible_features & qcow2::kIncompatCorrupt) r.flags |= abi::kInfoCorrupt;
  if (h.incompatible_features & qcow2::kIncompatExtendedL2) r.flags |= abi::kInfoExtendedL2;
  if (h.compatible_features & qcow2::kCompatLazyRefcounts) r.flags |= abi::kInfoLazyRefcounts;
  if (h.autoclear_features & qcow2::kAutoclearDataFileRaw) r.flags |= abi::kInfoDataFileRaw;
  if (h.crypt_method != qcow2::kCryptNone) r.flags |= abi::kInfoEncrypted;
  r.backing_file_len =
      CopyText(head, h.backing_file, r.backing_file, abi::kMaxBackingFileBytes);
  if (r.backing_file_len != 0) r.flags |= abi::kInfoHasBackingFile;
  r.backing_format_len =
      CopyText(head, h.backing_format, r.backing_format, abi::kMaxFormatNameBytes);
  if (r.backing_format_len != 0) r.flags |= abi::kInfoHasBackingFormat;
  if (h.external_data_file.length != 0) {
    TRY_STATUS(ctx.records.AppendText(
        abi::InfoRecordType::kDataFile,
        head.Sub(h.external_data_file.offset, h.external_data_file.length)));
  }
  qcow2::BitmapsExtension bitmaps;
  TRY(bitmaps, ReadBitmapsExtension(ctx, h, head));
  if (h.crypt_method == qcow2::kCryptLuks) TRY_STATUS(SendLuks(ctx, h));
  TRY_STATUS(SendSnapshots(ctx, h));
  return SendBitmaps(ctx, h, bitmaps);
}

}  // namespace instar::ops::info
