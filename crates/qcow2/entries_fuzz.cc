// Fuzz target: L1/L2 decoding for every geometry and refcount reads and writes of every width.
// Input: cluster_bits, refcount order, flags, then 8-byte entries. Invariants: decoded host
// offsets fit the masks, compressed sizes are bounded, and a refcount written then read back
// is the value (truncated to its width).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crates/qcow2/entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  instar::qcow2::Header h;
  h.cluster_bits = 9 + data[0] % 13;
  h.cluster_size = uint64_t{1} << h.cluster_bits;
  h.refcount_order = data[1] % 7;
  h.incompatible_features = (data[2] & 1) ? instar::qcow2::kIncompatExtendedL2 : 0;
  const instar::qcow2::Geometry g = instar::qcow2::GeometryOf(h);
  std::vector<uint8_t> block(4096, 0);
  const uint64_t entries = (block.size() * 8) >> h.refcount_order;
  for (size_t off = 3; off + 16 <= size; off += 16) {
    uint64_t raw, bitmap;
    std::memcpy(&raw, data + off, 8);
    std::memcpy(&bitmap, data + off + 8, 8);
    const auto l1 = instar::qcow2::DecodeL1(raw);
    if (l1.l2_offset & ~instar::qcow2::kOffsetMask) std::abort();
    const auto l2 = instar::qcow2::DecodeL2(g, raw, bitmap);
    if (l2.kind == instar::qcow2::ClusterKind::kCompressed) {
      if (l2.compressed_bytes == 0 || l2.host_offset >> g.compressed_offset_bits) std::abort();
    } else if (l2.host_offset & ~instar::qcow2::kOffsetMask) {
      std::abort();
    }
    const uint64_t index = raw % entries;
    const uint64_t value = bitmap & instar::qcow2::MaxRefcount(h.refcount_order);
    instar::qcow2::SetRefcount(block.data(), h.refcount_order, index, value);
    if (instar::qcow2::GetRefcount(block.data(), h.refcount_order, index) != value) std::abort();
  }
  return 0;
}
