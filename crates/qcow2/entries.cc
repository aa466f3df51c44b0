#include "crates/qcow2/entries.h"

#include "crates/base/endian.h"

namespace instar::qcow2 {

L1Entry DecodeL1(uint64_t raw) {
  L1Entry e;
  e.l2_offset = raw & kOffsetMask;
  e.copied = (raw & kCopiedFlag) != 0;
  e.reserved_bits = (raw & kL1ReservedMask) != 0;
  return e;
}

uint64_t EncodeL1(uint64_t l2_offset, bool copied) {
  return (l2_offset & kOffsetMask) | (copied ? kCopiedFlag : 0);
}

L2Entry DecodeL2(const Geometry& g, uint64_t raw, uint64_t bitmap) {
  L2Entry e;
  e.copied = (raw & kCopiedFlag) != 0;
  if (raw & kCompressedFlag) {
    const uint32_t x = g.compressed_offset_bits;
    e.kind = ClusterKind::kCompressed;
    e.host_offset = raw & ((1ull << x) - 1);
    const uint64_t additional_sectors = (raw >> x) & ((1ull << (62 - x)) - 1);
    e.compressed_bytes = (additional_sectors + 1) * 512;
    e.copied = false;
    return e;
  }
  e.host_offset = raw & kOffsetMask;
  e.unaligned_offset = (e.host_offset & (g.cluster_size - 1)) != 0;
  if (g.extended_l2) {
    e.subcluster_alloc = static_cast<uint32_t>(bitmap);
    e.subcluster_zero = static_cast<uint32_t>(bitmap >> 32);
    e.kind = e.host_offset != 0 ? ClusterKind::kNormal : ClusterKind::kUnallocated;
    return e;
  }
  const bool zero = (raw & kZeroFlag) != 0;
  if (e.host_offset == 0) {
    e.kind = zero ? ClusterKind::kZeroPlain : ClusterKind::kUnallocated;
  } else {
    e.kind = zero ? ClusterKind::kZeroAllocated : ClusterKind::kNormal;
  }
  return e;
}

uint64_t EncodeL2Normal(uint64_t host_offset, bool copied) {
  return (host_offset & kOffsetMask) | (copied ? kCopiedFlag : 0);
}

uint64_t GetRefcount(const uint8_t* block, uint32_t order, uint64_t index) {
  switch (order) {
    case 0: return (block[index / 8] >> (index % 8)) & 1;
    case 1: return (block[index / 4] >> (2 * (index % 4))) & 3;
    case 2: return (block[index / 2] >> (4 * (index % 2))) & 15;
    case 3: return block[index];
    case 4: return base::LoadBe16(block + 2 * index);
    case 5: return base::LoadBe32(block + 4 * index);
    default: return base::LoadBe64(block + 8 * index);
  }
}

void SetRefcount(uint8_t* block, uint32_t order, uint64_t index, uint64_t value) {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const uint32_t bits = 1u << order;
      const uint32_t per_byte = 8 / bits;
      const uint32_t shift = bits * static_cast<uint32_t>(index % per_byte);
      const uint8_t mask = static_cast<uint8_t>(((1u << bits) - 1) << shift);
      uint8_t& byte = block[index / per_byte];
      byte = static_cast<uint8_t>((byte & ~mask) | ((value << shift) & mask));
      return;
    }
    case 3: block[index] = static_cast<uint8_t>(value); return;
    case 4:
      block[2 * index] = static_cast<uint8_t>(value >> 8);
      block[2 * index + 1] = static_cast<uint8_t>(value);
      return;
    case 5: base::StoreBe32(block + 4 * index, static_cast<uint32_t>(value)); return;
    default: base::StoreBe64(block + 8 * index, value); return;
  }
}

}  // namespace instar::qcow2
