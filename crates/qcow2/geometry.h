// Geometry derived from a qcow2 header (QEMU qcow2 specification: "Cluster mapping",
// "Host cluster management"): entries per L2 table and refcount block, L1 size a virtual size
// needs, and the masks of the on-disk entries. Pure and freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/checked.h"
#include "crates/qcow2/header.h"

namespace instar::qcow2 {

// L1 and standard L2 entries: bits 9..55 hold the host offset.
inline constexpr uint64_t kOffsetMask = 0x00FFFFFFFFFFFE00ull;
inline constexpr uint64_t kCopiedFlag = 1ull << 63;
inline constexpr uint64_t kCompressedFlag = 1ull << 62;
inline constexpr uint64_t kZeroFlag = 1ull << 0;
// Bits an L1 entry may have set besides the offset and the copied flag are reserved.
inline constexpr uint64_t kL1ReservedMask = 0x7F000000000001FFull;
inline constexpr uint64_t kRefcountTableOffsetMask = 0xFFFFFFFFFFFFFE00ull;

struct Geometry {
  uint32_t cluster_bits = 0;
  uint64_t cluster_size = 0;
  bool extended_l2 = false;
  uint32_t l2_entry_bytes = 8;      // 16 with extended L2
  uint64_t l2_entries = 0;          // per L2 table
  uint32_t refcount_order = 4;
  uint64_t refcount_entries = 0;    // per refcount block
  uint32_t compressed_offset_bits = 0;  // x in the spec's compressed cluster descriptor
};

Geometry GeometryOf(const Header& header);

// Guest bytes one L2 table maps.
inline uint64_t BytesPerL2(const Geometry& g) { return g.l2_entries * g.cluster_size; }
// Host clusters one refcount block covers.
inline uint64_t ClustersPerRefblock(const Geometry& g) { return g.refcount_entries; }

// L1 entries needed to map `virtual_size` bytes; false on overflow.
bool L1EntriesFor(const Geometry& g, uint64_t virtual_size, uint64_t* entries);

}  // namespace instar::qcow2
