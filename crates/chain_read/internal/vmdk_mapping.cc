#include "crates/chain_read/internal/vmdk_mapping.h"

#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::chain_read::internal {
namespace {

using base::Fail;

constexpr uint64_t kSector = 512;
constexpr uint64_t kCapacityFieldOffset = 12;
constexpr uint32_t kFlagZeroGrain = 1u << 2;
constexpr uint32_t kGrainZeroed = 1;      // grain table entry of a zeroed grain
constexpr uint16_t kCompressDeflate = 1;  // compressAlgorithm
constexpr uint32_t kMarkerEndOfStream = 0;
constexpr uint32_t kMarkerFooter = 3;

base::Result<vmdk::SparseHeader, ReadError> ParseAt(const base::ImageReader& reader,
                                                    const uint8_t* sector) {
  auto parsed = vmdk::ParseSparseHeader(base::ByteView(sector, kSector), reader.size);
  if (!parsed.ok()) {
    return Fail(ReadError::kVmdkHeaderInvalid, static_cast<uint64_t>(parsed.error().code));
  }
  return parsed.value();
}

// streamOptimized: the footer marker, the header again (the one that counts) and the
// end-of-stream marker fill the last three sectors, as qemu reads them.
base::Result<vmdk::SparseHeader, ReadError> ReadFooter(const base::ImageReader& reader) {
  uint8_t footer[3 * kSector];
  const uint64_t end = base::DivRoundUp(reader.size, kSector) * kSector;
  if (end < sizeof footer) return Fail(ReadError::kVmdkBadFooter, 0);
  const uint64_t start = end - sizeof footer;
  const uint64_t n = reader.size - start;
  if (!reader.Read(start, n, footer)) return Fail(ReadError::kIoError, start);
  for (uint64_t i = n; i < sizeof footer; ++i) footer[i] = 0;
  const uint8_t* eos = footer + 2 * kSector;
  if (base::LoadLe32(footer + 8) != 0 || base::LoadLe32(footer + 12) != kMarkerFooter ||
      base::LoadLe64(eos) != 0 || base::LoadLe32(eos + 8) != 0 ||
      base::LoadLe32(eos + 12) != kMarkerEndOfStream) {
    return Fail(ReadError::kVmdkBadFooter, start);
  }
  TRY(vmdk::SparseHeader h, ParseAt(reader, footer + kSector));
  if (h.gd_offset_sectors == vmdk::kGdAtEnd) return Fail(ReadError::kVmdkBadFooter, start);
  return h;
}

}  // namespace

base::Result<VmdkMapping, ReadError> OpenVmdkMapping(const base::ImageReader& reader) {
  uint8_t head[kSector] = {};
  const uint64_t n = reader.size < kSector ? reader.size : kSector;
  if (n > 0 && !reader.Read(0, n, head)) return Fail(ReadError::kIoError, 0);
  if (vmdk::LooksLikeDescriptor(base::ByteView(head, n))) {
    return Fail(ReadError::kVmdkMultiFile);
  }
  TRY(vmdk::SparseHeader h, ParseAt(reader, head));
  if (h.gd_offset_sectors == vmdk::kGdAtEnd) {
    TRY(h, ReadFooter(reader));
  }
  VmdkMapping m;
  if (!base::CheckedMul(h.capacity_sectors, kSector, &m.virtual_size) ||
      m.virtual_size > vmdk::kMaxImageBytes) {
    return Fail(ReadError::kCorrupt, kCapacityFieldOffset);
  }
  // ParseSparseHeader bounds both: grain <= 2^21 sectors, 1 <= gtes_per_gt <= 512.
  m.grain_bytes = h.grain_sectors * kSector;
  m.gtes_per_gt = h.gtes_per_gt;
  m.gd_offset = h.gd_offset_sectors * kSector;
  // qemu keeps the directory size in 32 bits (a larger count wraps; lookups past it fail).
  m.gd_entries = static_cast<uint32_t>(
      base::DivRoundUp(h.capacity_sectors, h.grain_sectors * h.gtes_per_gt));
  m.file_size = reader.size;
  m.zero_grains = (h.flags & kFlagZeroGrain) != 0;
  m.compressed = h.compress_algorithm == kCompressDeflate;
  m.markers = (h.flags & vmdk::kFlagMarkers) != 0;
  return m;
}

base::Result<Extent, ReadError> MapVmdk(const VmdkMapping& m, BlockCache& cache,
                                        uint64_t guest_offset, uint64_t max_length) {
  if (guest_offset >= m.virtual_size || max_length == 0) {
    return Fail(ReadError::kOutOfRange, guest_offset);
  }
  const uint64_t limit = m.virtual_size - guest_offset < max_length
                             ? m.virtual_size - guest_offset
                             : max_length;
  const uint64_t gt_span = m.grain_bytes * m.gtes_per_gt;
  Extent run;
  uint64_t pos = guest_offset;
  while (pos - guest_offset < limit) {
    // One grain (or one absent grain table) per step.
    Extent piece;
    const uint64_t gd_index = pos / gt_span;
    piece.length = gt_span - pos % gt_span;
    const uint64_t gd_entry = m.gd_offset + gd_index * 4;
    if (gd_index >= m.gd_entries) return Fail(ReadError::kCorrupt, gd_entry);
    TRY(const uint8_t* gd_raw, cache.At(gd_entry));
    const uint64_t gt_offset = uint64_t{base::LoadLe32(gd_raw)} * kSector;
    if (gt_offset != 0) {
      if (gt_offset >= m.file_size) return Fail(ReadError::kCorrupt, gt_offset);
      const uint64_t gt_index = (pos / m.grain_bytes) % m.gtes_per_gt;
      TRY(const uint8_t* gt_raw, cache.At(gt_offset + gt_index * 4));
      const uint32_t grain = base::LoadLe32(gt_raw);
      const uint64_t within = pos % m.grain_bytes;
      piece.length = m.grain_bytes - within;
      if (grain == kGrainZeroed && m.zero_grains) {
        piece.kind = ExtentKind::kZero;
      } else if (grain != 0) {
        const uint64_t grain_host = uint64_t{grain} * kSector;
        if (grain_host >= m.file_size) return Fail(ReadError::kCorrupt, grain_host);
        piece.kind = m.compressed ? ExtentKind::kCompressed : ExtentKind::kData;
        piece.host_offset = m.compressed ? grain_host : grain_host + within;
      }
    }
    if (pos == guest_offset) {
      run = piece;
    } else if (piece.kind != run.kind || run.kind == ExtentKind::kCompressed ||
               (run.kind == ExtentKind::kData && piece.host_offset != run.host_offset + run.length)) {
      break;
    } else {
      run.length += piece.length;
    }
    pos += piece.length;
  }
  if (run.length > limit) run.length = limit;
  return run;
}

}  // namespace instar::chain_read::internal
