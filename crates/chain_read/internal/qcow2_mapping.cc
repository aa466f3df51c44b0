#include "crates/chain_read/internal/qcow2_mapping.h"

#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/endian.h"
#include "crates/qcow2/entries.h"
#include "crates/qcow2/header.h"

namespace instar::chain_read::internal {
namespace {

using base::Fail;

constexpr uint64_t kFirstParseBytes = 4096;
constexpr uint64_t kMaxCacheBlock = 32u << 10;
constexpr uint32_t kSubclusters = 32;  // per cluster with extended L2 entries

// Reads [0, length) of the file into `buf`, zeros past its end.
bool ReadHead(const base::ImageReader& reader, uint8_t* buf, uint64_t length) {
  const uint64_t n = reader.size < length ? reader.size : length;
  if (n > 0 && !reader.Read(0, n, buf)) return false;
  for (uint64_t i = n; i < length; ++i) buf[i] = 0;
  return true;
}

base::Result<qcow2::Header, ReadError> ParseHead(const base::ImageReader& reader,
                                                 base::Arena& arena) {
  uint8_t* head = arena.Allocate(kFirstParseBytes);
  if (head == nullptr) return Fail(ReadError::kArenaTooSmall, kFirstParseBytes);
  if (!ReadHead(reader, head, kFirstParseBytes)) return Fail(ReadError::kIoError, 0);
  auto parsed = qcow2::ParseHeader(base::ByteView(head, kFirstParseBytes));
  if (parsed.ok() && parsed.value().cluster_size > kFirstParseBytes) {
    // The checks that need the whole first cluster.
    const uint64_t cluster = parsed.value().cluster_size;
    head = arena.Allocate(cluster);
    if (head == nullptr) return Fail(ReadError::kArenaTooSmall, kFirstParseBytes + cluster);
    if (!ReadHead(reader, head, cluster)) return Fail(ReadError::kIoError, 0);
    parsed = qcow2::ParseHeader(base::ByteView(head, cluster));
  }
  if (!parsed.ok()) {
    return Fail(ReadError::kQcow2HeaderInvalid, static_cast<uint64_t>(parsed.error().code));
  }
  return parsed.value();
}

}  // namespace

base::Result<Piece, ReadError> Qcow2PieceAt(const Qcow2Mapping& m, BlockCache& cache,
                                            uint64_t pos) {
  const qcow2::Geometry& g = m.geometry;
  const uint64_t per_l2 = qcow2::BytesPerL2(g);
  const uint64_t l1_index = pos / per_l2;
  Piece piece;
  piece.length = per_l2 - pos % per_l2;
  if (l1_index >= m.l1_entries) return piece;
  const uint64_t l1_entry_offset = m.l1_offset + l1_index * 8;
  TRY(const uint8_t* l1_raw, cache.At(l1_entry_offset));
  const uint64_t l2_offset = qcow2::DecodeL1(base::LoadBe64(l1_raw)).l2_offset;
  if (l2_offset == 0) return piece;
  if ((l2_offset & (g.cluster_size - 1)) != 0 || l2_offset >= m.file_size) {
    return Fail(ReadError::kCorrupt, l2_offset);
  }
  const uint64_t cluster_start = pos & ~(g.cluster_size - 1);
  const uint64_t within = pos - cluster_start;
  const uint64_t l2_index = (pos >> g.cluster_bits) % g.l2_entries;
  const uint64_t entry_offset = l2_offset + l2_index * g.l2_entry_bytes;
  TRY(const uint8_t* l2_raw, cache.At(entry_offset));
  const uint64_t bitmap = g.extended_l2 ? base::LoadBe64(l2_raw + 8) : 0;
  const qcow2::L2Entry e = qcow2::DecodeL2(g, base::LoadBe64(l2_raw), bitmap);
  piece.length = g.cluster_size - within;

  if (e.kind == qcow2::ClusterKind::kCompressed) {
    if (m.zstd) return Fail(ReadError::kQcow2ZstdCompression, entry_offset);
    if (e.host_offset >= m.file_size) return Fail(ReadError::kCorrupt, e.host_offset);
    piece.kind = ExtentKind::kCompressed;
    piece.host = e.host_offset;
    // qemu reads the stated sectors less the offset into the first one.
    piece.compressed_bytes = e.compressed_bytes - (e.host_offset & 511);
    return piece;
  }
  // qemu checks the alignment of every entry with a host cluster, zero or not.
  if (e.host_offset != 0 && e.unaligned_offset) return Fail(ReadError::kCorrupt, e.host_offset);
  if (!g.extended_l2) {
    switch (e.kind) {
      case qcow2::ClusterKind::kUnallocated:
        return piece;
      case qcow2::ClusterKind::kZeroPlain:
      case qcow2::ClusterKind::kZeroAllocated:
        piece.kind = ExtentKind::kZero;
        return piece;
      case qcow2::ClusterKind::kNormal:
      case qcow2::ClusterKind::kCompressed:
        break;
    }
    if (e.host_offset >= m.file_size) return Fail(ReadError::kCorrupt, e.host_offset);
    piece.kind = ExtentKind::kData;
    piece.host = e.host_offset + within;
    return piece;
  }
  // Extended L2: a subcluster is zero, allocated or unallocated; both bits set, or allocated
  // bits without a host cluster, make the whole entry invalid (qemu: EIO, corrupt).
  const bool has_host = e.kind == qcow2::ClusterKind::kNormal;
  if ((e.subcluster_alloc & e.subcluster_zero) != 0 || (!has_host && e.subcluster_alloc != 0)) {
    return Fail(ReadError::kCorrupt, entry_offset);
  }
  const uint64_t sub_size = g.cluster_size / kSubclusters;
  const uint32_t first = static_cast<uint32_t>(within / sub_size);
  auto kind_of = [&](uint32_t sc) {
    if (e.subcluster_zero & (1u << sc)) return ExtentKind::kZero;
    if (e.subcluster_alloc & (1u << sc)) return ExtentKind::kData;
    return ExtentKind::kUnallocated;
  };
  piece.kind = kind_of(first);
  uint32_t last = first + 1;
  while (last < kSubclusters && kind_of(last) == piece.kind) ++last;
  piece.length = uint64_t{last} * sub_size - within;
  if (piece.kind == ExtentKind::kData) {
    if (e.host_offset >= m.file_size) return Fail(ReadError::kCorrupt, e.host_offset);
    piece.host = e.host_offset + within;
  }
  return piece;
}

base::Result<Qcow2Mapping, ReadError> OpenQcow2Mapping(const base::ImageReader& reader,
                                                       base::Arena& arena) {
  const uint64_t mark = arena.used();
  auto parsed = ParseHead(reader, arena);
  arena.Rewind(mark);
  if (!parsed.ok()) return parsed.error();
  const qcow2::Header& h = parsed.value();
  if (h.crypt_method != qcow2::kCryptNone) {
    return Fail(ReadError::kQcow2Encrypted, h.crypt_method);
  }
  if ((h.incompatible_features & qcow2::kIncompatExternalData) != 0) {
    return Fail(ReadError::kQcow2ExternalDataFile);
  }
  Qcow2Mapping m;
  m.geometry = qcow2::GeometryOf(h);
  m.virtual_size = h.size & ~uint64_t{511};
  m.l1_offset = h.l1_table_offset;
  m.l1_entries = h.l1_size;
  m.file_size = reader.size;
  m.zstd = h.compression_type == qcow2::kCompressionZstd;
  return m;
}

uint64_t Qcow2CacheBlock(const Qcow2Mapping& m) {
  return m.geometry.cluster_size < kMaxCacheBlock ? m.geometry.cluster_size : kMaxCacheBlock;
}

}  // namespace instar::chain_read::internal
