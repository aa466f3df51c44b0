#include "crates/chain_read/layer.h"

#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/chain_read/inflate.h"
#include "crates/chain_read/internal/block_cache.h"
#include "crates/chain_read/internal/piece.h"
#include "crates/chain_read/internal/qcow2_mapping.h"
#include "crates/chain_read/internal/vmdk_mapping.h"

namespace instar::chain_read {
namespace {

using base::Fail;

constexpr uint64_t kSector = 512;
constexpr uint32_t kMinCacheBlocks = 2;
constexpr uint64_t kGrainMarkerBytes = 12;  // lba (8), size (4), then the zlib stream

void Zero(uint8_t* out, uint64_t length) {
  for (uint64_t i = 0; i < length; ++i) out[i] = 0;
}

uint64_t Min(uint64_t a, uint64_t b) { return a < b ? a : b; }

}  // namespace

base::Result<Layer*, ReadError> Layer::Open(ImageFormat format, const base::ImageReader& reader,
                                            base::Arena& arena, uint64_t budget) {
  Layer* layer = arena.New<Layer>();
  if (layer == nullptr) return Fail(ReadError::kArenaTooSmall, sizeof(Layer));
  layer->format_ = format;
  layer->reader_ = reader;
  switch (format) {
    case ImageFormat::kRaw: {
      // qemu counts whole sectors; the tail of the last one reads as zeros.
      if (!base::CheckedAlignUp(reader.size, kSector, &layer->virtual_size_)) {
        return Fail(ReadError::kOutOfRange, reader.size);
      }
      layer->granularity_ = kSector;
      return layer;
    }
    case ImageFormat::kQcow2: {
      TRY(const internal::Qcow2Mapping m, internal::OpenQcow2Mapping(reader, arena));
      layer->qcow2_ = arena.New<internal::Qcow2Mapping>();
      if (layer->qcow2_ == nullptr) return Fail(ReadError::kArenaTooSmall, sizeof m);
      *layer->qcow2_ = m;
      TRY(layer->cache_, internal::BlockCache::Create(reader, arena, budget,
                                                      internal::Qcow2CacheBlock(m),
                                                      kMinCacheBlocks));
      layer->virtual_size_ = m.virtual_size;
      layer->granularity_ = m.geometry.extended_l2 ? m.geometry.cluster_size / 32
                                                   : m.geometry.cluster_size;
      return layer;
    }
    case ImageFormat::kVmdk: {
      TRY(const internal::VmdkMapping m, internal::OpenVmdkMapping(reader));
      layer->vmdk_ = arena.New<internal::VmdkMapping>();
      if (layer->vmdk_ == nullptr) return Fail(ReadError::kArenaTooSmall, sizeof m);
      *layer->vmdk_ = m;
      TRY(layer->cache_, internal::BlockCache::Create(reader, arena, budget,
                                                      internal::kVmdkCacheBlock,
                                                      kMinCacheBlocks));
      layer->virtual_size_ = m.virtual_size;
      layer->granularity_ = m.grain_bytes;
      return layer;
    }
  }
  return Fail(ReadError::kOutOfRange, static_cast<uint64_t>(format));
}

base::Result<internal::Piece, ReadError> Layer::PieceAt(uint64_t guest_offset) {
  switch (format_) {
    case ImageFormat::kQcow2:
      return internal::Qcow2PieceAt(*qcow2_, *cache_, guest_offset);
    case ImageFormat::kVmdk:
      return internal::VmdkPieceAt(*vmdk_, *cache_, guest_offset);
    case ImageFormat::kRaw:
      break;
  }
  internal::Piece piece;
  piece.kind = ExtentKind::kData;
  piece.host = guest_offset;
  piece.length = virtual_size_ - guest_offset;
  return piece;
}

base::Result<Extent, ReadError> Layer::Map(uint64_t guest_offset, uint64_t max_length) {
  if (guest_offset >= virtual_size_ || max_length == 0) {
    return Fail(ReadError::kOutOfRange, guest_offset);
  }
  const uint64_t limit = Min(max_length, virtual_size_ - guest_offset);
  TRY(const internal::Piece first, PieceAt(guest_offset));
  uint64_t length = first.length;
  // Extend across entries that continue the same kind (and, for data, the same host range);
  // compressed clusters stay one per run.
  while (first.kind != ExtentKind::kCompressed && length < limit) {
    TRY(const internal::Piece next, PieceAt(guest_offset + length));
    if (next.kind != first.kind) break;
    if (first.kind == ExtentKind::kData && next.host != first.host + length) break;
    length += next.length;
  }
  Extent e;
  e.kind = first.kind;
  e.length = Min(length, limit);
  e.host_offset = first.host;
  return e;
}

base::Status<ReadError> Layer::Read(uint64_t guest_offset, uint64_t length, uint8_t* out) {
  uint64_t end = 0;
  if (!base::CheckedAdd(guest_offset, length, &end) || end > virtual_size_) {
    return Fail(ReadError::kOutOfRange, guest_offset);
  }
  uint64_t done = 0;
  while (done < length) {
    TRY(const Extent e, Map(guest_offset + done, length - done));
    TRY_STATUS(ReadExtent(guest_offset + done, e, out + done));
    done += e.length;
  }
  return {};
}

base::Status<ReadError> Layer::ReadExtent(uint64_t guest_offset, const Extent& extent,
                                          uint8_t* out) {
  switch (extent.kind) {
    case ExtentKind::kData:
      return ReadData(extent.host_offset, extent.length, out);
    case ExtentKind::kCompressed:
      return ReadCompressed(guest_offset, extent, out);
    case ExtentKind::kZero:
    case ExtentKind::kUnallocated:
      Zero(out, extent.length);
      return {};
  }
  return {};
}

base::Status<ReadError> Layer::ReadData(uint64_t host_offset, uint64_t length, uint8_t* out) {
  // Past the end of the file qemu's file driver reads zeros.
  const uint64_t n = host_offset < reader_.size ? Min(length, reader_.size - host_offset) : 0;
  if (n > 0 && !reader_.Read(host_offset, n, out)) {
    return Fail(ReadError::kIoError, host_offset);
  }
  Zero(out + n, length - n);
  return {};
}

base::Status<ReadError> Layer::ReserveDecompression() {
  if (decompressed_ != nullptr) return {};
  // qcow2: one cluster out; in, what qemu's writer can state for one cluster (its compressed
  // size is below the cluster size, plus the offset into the first sector). vmdk: one grain
  // out; in, the two grains qemu reads.
  const uint64_t unit = format_ == ImageFormat::kQcow2 ? qcow2_->geometry.cluster_size
                                                       : vmdk_->grain_bytes;
  const uint64_t in = format_ == ImageFormat::kQcow2 ? unit + kSector : 2 * unit;
  uint8_t* scratch = cache_->TakeScratch(in + unit);
  if (scratch == nullptr) {
    return Fail(ReadError::kArenaTooSmall, in + unit + kMinCacheBlocks * cache_->block_size());
  }
  compressed_in_ = scratch;
  compressed_in_bytes_ = in;
  decompressed_ = scratch + in;
  return {};
}

base::Status<ReadError> Layer::ReadCompressed(uint64_t guest_offset, const Extent& extent,
                                              uint8_t* out) {
  TRY_STATUS(ReserveDecompression());
  const uint64_t host = extent.host_offset;
  uint64_t within = 0;
  if (format_ == ImageFormat::kQcow2) {
    const uint64_t cluster = qcow2_->geometry.cluster_size;
    within = guest_offset & (cluster - 1);
    if (decompressed_host_ != host) {
      TRY(const internal::Piece piece, internal::Qcow2PieceAt(*qcow2_, *cache_, guest_offset));
      const uint64_t n = Min(piece.compressed_bytes, compressed_in_bytes_);
      TRY_STATUS(ReadData(host, n, compressed_in_));
      decompressed_host_ = ~0ull;
      auto inflated = Inflate(base::ByteView(compressed_in_, n), InflateWrapper::kRaw,
                              InflateUntil::kOutputFull, decompressed_, cluster);
      if (!inflated.ok()) return Fail(ReadError::kBadCompressedData, host);
      decompressed_bytes_ = cluster;
      decompressed_host_ = host;
    }
  } else {
    const uint64_t grain = vmdk_->grain_bytes;
    within = guest_offset % grain;
    if (decompressed_host_ != host) {
      TRY_STATUS(ReadData(host, compressed_in_bytes_, compressed_in_));
      decompressed_host_ = ~0ull;
      base::ByteView stream(compressed_in_, grain);
      if (vmdk_->markers) {
        const uint64_t stated = base::LoadLe32(compressed_in_ + 8);
        if (stated == 0 || stated > compressed_in_bytes_) {
          return Fail(ReadError::kBadCompressedData, host);
        }
        stream = base::ByteView(compressed_in_ + kGrainMarkerBytes,
                                Min(stated, compressed_in_bytes_ - kGrainMarkerBytes));
      }
      auto inflated = Inflate(stream, InflateWrapper::kZlib, InflateUntil::kStreamEnd,
                              decompressed_, grain);
      if (!inflated.ok()) return Fail(ReadError::kBadCompressedData, host);
      decompressed_bytes_ = inflated.value().written;
      decompressed_host_ = host;
    }
  }
  // qemu refuses a read past what the grain inflated to.
  if (within > decompressed_bytes_ || extent.length > decompressed_bytes_ - within) {
    return Fail(ReadError::kBadCompressedData, host);
  }
  const uint8_t* src = decompressed_ + within;
  for (uint64_t i = 0; i < extent.length; ++i) out[i] = src[i];
  return {};
}

}  // namespace instar::chain_read
