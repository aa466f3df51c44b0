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

// The header that counts: the extent's own, or (streamOptimized with the grain directory at
// the end) its footer's.
base::Result<vmdk::SparseHeader, ReadError> ReadHeader(const base::ImageReader& reader,
                                                       const uint8_t* head) {
  auto parsed = vmdk::ReadSparseHeader(
      base::ByteView(head, kSector), reader.size,
      [&](uint64_t offset, uint64_t length, uint8_t* out) {
        // Past the end of the file (the last sector's tail) reads as zeros.
        const uint64_t n = offset >= reader.size ? 0
                           : reader.size - offset < length ? reader.size - offset
                                                           : length;
        for (uint64_t i = n; i < length; ++i) out[i] = 0;
        return n == 0 || reader.Read(offset, n, out);
      });
  if (parsed.ok()) return parsed.value();
  const vmdk::SparseHeaderError e = parsed.error().code;
  if (e == vmdk::SparseHeaderError::kFooterUnreadable ||
      e == vmdk::SparseHeaderError::kInvalidFooter) {
    const uint64_t end = base::DivRoundUp(reader.size, kSector) * kSector;
    return Fail(ReadError::kVmdkBadFooter, end >= vmdk::kFooterBytes ? end - vmdk::kFooterBytes : 0);
  }
  return Fail(ReadError::kVmdkHeaderInvalid, static_cast<uint64_t>(e));
}

}  // namespace

base::Result<VmdkMapping, ReadError> OpenVmdkMapping(const base::ImageReader& reader) {
  uint8_t head[kSector] = {};
  const uint64_t n = reader.size < kSector ? reader.size : kSector;
  if (n > 0 && !reader.Read(0, n, head)) return Fail(ReadError::kIoError, 0);
  if (vmdk::LooksLikeDescriptor(base::ByteView(head, n))) {
    return Fail(ReadError::kVmdkMultiFile);
  }
  TRY(vmdk::SparseHeader h, ReadHeader(reader, head));
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

base::Result<Piece, ReadError> VmdkPieceAt(const VmdkMapping& m, BlockCache& cache,
                                           uint64_t pos) {
  const uint64_t gt_span = m.grain_bytes * m.gtes_per_gt;
  Piece piece;
  const uint64_t gd_index = pos / gt_span;
  piece.length = gt_span - pos % gt_span;
  const uint64_t gd_entry = m.gd_offset + gd_index * 4;
  if (gd_index >= m.gd_entries) return Fail(ReadError::kCorrupt, gd_entry);
  TRY(const uint8_t* gd_raw, cache.At(gd_entry));
  const uint64_t gt_offset = uint64_t{base::LoadLe32(gd_raw)} * kSector;
  if (gt_offset == 0) return piece;
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
    piece.host = m.compressed ? grain_host : grain_host + within;
  }
  return piece;
}

}  // namespace instar::chain_read::internal
