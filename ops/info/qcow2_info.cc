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

// What the guest reads of a table at most: keeps a hostile table from exhausting scratch.
constexpr uint64_t kMaxTableWindow = 4u << 20;
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
    case HeaderError::kBadCryptoExtension: return InfoError::kCryptoHeaderInvalid;
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

// A growing window over a table that starts at `offset`: entries are variable-sized, so the
// window is extended on demand, never beyond kMaxTableWindow.
class TableWindow {
 public:
  TableWindow(InfoContext& ctx, uint64_t offset) : ctx_(ctx), offset_(offset) {}

  // Makes [0, end) of the table readable; false when that exceeds the window cap.
  InfoStatus Ensure(uint64_t end, InfoError too_large) {
    if (end <= loaded_.size()) return {};
    if (end > kMaxTableWindow) return Fail(too_large);
    uint64_t want = 0;
    if (!base::CheckedAlignUp(end, 64 * 1024, &want)) return Fail(too_large);
    if (want > kMaxTableWindow) want = kMaxTableWindow;
    ByteView more;
    TRY(more, ctx_.ReadPadded(offset_ + loaded_.size(), want - loaded_.size()));
    // Arena allocations are contiguous when nothing else was allocated in between; the
    // first read fixes the start, later ones must follow it.
    if (loaded_.size() == 0) {
      loaded_ = more;
    } else if (more.data() == loaded_.data() + loaded_.size()) {
      loaded_ = ByteView(loaded_.data(), want);
    } else {
      return Fail(too_large);
    }
    return {};
  }
  ByteView bytes() const { return loaded_; }

 private:
  InfoContext& ctx_;
  uint64_t offset_;
  ByteView loaded_;
};

InfoStatus SendSnapshots(InfoContext& ctx, const qcow2::Header& h) {
  TableWindow window(ctx, h.snapshots_offset);
  uint64_t at = 0;
  for (uint32_t i = 0; i < h.nb_snapshots; ++i) {
    // The fixed part, the largest extra data and both names bound one entry.
    TRY_STATUS(window.Ensure(at + qcow2::kSnapshotFixedBytes, InfoError::kSnapshotTableTooLarge));
    uint32_t extra = 0;
    uint16_t id_size = 0, name_size = 0;
    window.bytes().Be16(at + 12, &id_size);
    window.bytes().Be16(at + 14, &name_size);
    window.bytes().Be32(at + 36, &extra);
    if (extra > qcow2::kMaxSnapshotExtraData) return Fail(InfoError::kSnapshotExtraTooLarge, i);
    TRY_STATUS(window.Ensure(at + qcow2::kSnapshotFixedBytes + extra + id_size + name_size,
                             InfoError::kSnapshotTableTooLarge));
    auto parsed = qcow2::ParseSnapshot(window.bytes(), at);
    if (!parsed.ok()) {
      return Fail(parsed.error().code == qcow2::SnapshotError::kExtraTooLarge
                      ? InfoError::kSnapshotExtraTooLarge
                      : InfoError::kSnapshotTableTooLarge,
                  i);
    }
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
                                  window.bytes().Sub(s.id_offset, s.id_length),
                                  window.bytes().Sub(s.name_offset, s.name_length)));
    ++ctx.result.snapshot_count;
    at += s.entry_size;
  }
  return {};
}

InfoStatus SendBitmaps(InfoContext& ctx, const qcow2::Header& h, ByteView head) {
  // Without the autoclear bit the extension is stale and qemu ignores it.
  if (h.bitmaps_extension.length == 0 || (h.autoclear_features & qcow2::kAutoclearBitmaps) == 0) {
    return {};
  }
  auto ext = qcow2::ParseBitmapsExtension(
      head.Sub(h.bitmaps_extension.offset, h.bitmaps_extension.length), h.cluster_size);
  if (!ext.ok()) return Fail(InfoError::kBitmapExtensionInvalid);
  if (ext.value().directory_size > kMaxTableWindow) return Fail(InfoError::kBitmapDirectoryInvalid);
  ByteView directory;
  TRY(directory, ctx.ReadPadded(ext.value().directory_offset, ext.value().directory_size));
  uint64_t at = 0;
  for (uint32_t i = 0; i < ext.value().count; ++i) {
    auto entry = qcow2::ParseBitmapEntry(directory, at);
    if (!entry.ok()) return Fail(InfoError::kBitmapDirectoryInvalid, i);
    const qcow2::BitmapEntry& b = entry.value();
    abi::InfoBitmapRecord r{};
    r.flags = b.flags & (qcow2::kBitmapInUse | qcow2::kBitmapAuto);
    r.granularity_bits = b.granularity_bits;
    r.name_length = b.name_length;
    TRY_STATUS(ctx.records.Append(abi::InfoRecordType::kBitmap, &r, sizeof r,
                                  directory.Sub(b.name_offset, b.name_length)));
    ++ctx.result.bitmap_count;
    at += b.entry_size;
  }
  return {};
}

InfoStatus SendLuks(InfoContext& ctx, const qcow2::Header& h) {
  if (h.crypto_header.length < luks::kHeaderBytes) return Fail(InfoError::kCryptoHeaderInvalid);
  ByteView bytes;
  TRY(bytes, ctx.ReadPadded(h.crypto_header.offset, luks::kHeaderBytes));
  auto parsed = luks::ParseHeader(bytes);
  if (!parsed.ok()) return Fail(InfoError::kCryptoHeaderInvalid, parsed.error().detail);
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
    r.slots[i] = {l.slots[i].active ? 1u : 0u, l.slots[i].iterations,
                  l.slots[i].key_material_offset, l.slots[i].stripes};
  }
  return ctx.records.Append(abi::InfoRecordType::kLuks, &r, sizeof r);
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
  auto parsed = qcow2::ParseHeader(head);
  if (!parsed.ok()) {
    if (parsed.error().code == qcow2::HeaderError::kUnsupportedFeatures) {
      TRY_STATUS(SendFeatureNames(ctx, head, parsed.error().detail));
    }
    return Fail(FromHeader(parsed.error().code), parsed.error().detail);
  }
  const qcow2::Header& h = parsed.value();
  abi::InfoResult& r = ctx.result;
  r.format = static_cast<uint32_t>(abi::ImageFormat::kQcow2);
  r.virtual_size = h.size;
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
  if (h.crypt_method == qcow2::kCryptLuks) TRY_STATUS(SendLuks(ctx, h));
  TRY_STATUS(SendSnapshots(ctx, h));
  return SendBitmaps(ctx, h, head);
}

}  // namespace instar::ops::info
