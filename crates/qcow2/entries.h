// Decoding and encoding of qcow2 table entries (QEMU qcow2 specification: "Cluster mapping",
// "Compressed Clusters Descriptor", "Extended L2 Entries", "Host cluster management"):
// L1 entries, standard and extended L2 entries, and refcounts of any width (1..64 bits) in a
// big-endian refcount block. Pure and freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/qcow2/geometry.h"

namespace instar::qcow2 {

struct L1Entry {
  uint64_t l2_offset = 0;  // 0: the L2 table is unallocated
  bool copied = false;     // refcount is exactly 1
  bool reserved_bits = false;  // reserved bits set (corruption)
};
L1Entry DecodeL1(uint64_t raw);
uint64_t EncodeL1(uint64_t l2_offset, bool copied);

enum class ClusterKind {
  kUnallocated,      // reads from the backing file (or zeros without one)
  kZeroPlain,        // reads as zeros, no host cluster
  kZeroAllocated,    // reads as zeros, host cluster preallocated
  kNormal,           // data at host_offset
  kCompressed,       // compressed data at host_offset, compressed_bytes long (upper bound)
};

struct L2Entry {
  ClusterKind kind = ClusterKind::kUnallocated;
  uint64_t host_offset = 0;
  bool copied = false;
  uint64_t compressed_bytes = 0;  // for kCompressed: sectors * 512, as the spec bounds it
  bool unaligned_offset = false;  // standard cluster whose offset is not cluster aligned
  uint32_t subcluster_alloc = 0;  // extended L2 bitmap: allocated subclusters
  uint32_t subcluster_zero = 0;   // extended L2 bitmap: zero subclusters
};

// `raw` is the first 64-bit word; `bitmap` the second (extended L2 only, else 0).
L2Entry DecodeL2(const Geometry& g, uint64_t raw, uint64_t bitmap);
uint64_t EncodeL2Normal(uint64_t host_offset, bool copied);

// Refcount `index` of a refcount block (big-endian, width 2^order bits).
uint64_t GetRefcount(const uint8_t* block, uint32_t order, uint64_t index);
// Stores `value` (must fit the width) at `index`.
void SetRefcount(uint8_t* block, uint32_t order, uint64_t index, uint64_t value);
// Largest refcount a width can hold.
inline uint64_t MaxRefcount(uint32_t order) {
  return order >= 6 ? ~0ull : (1ull << (1u << order)) - 1;
}

}  // namespace instar::qcow2
