#include "crates/qcow2/geometry.h"

namespace instar::qcow2 {

Geometry GeometryOf(const Header& header) {
  Geometry g;
  g.cluster_bits = header.cluster_bits;
  g.cluster_size = header.cluster_size;
  g.extended_l2 = (header.incompatible_features & kIncompatExtendedL2) != 0;
  g.l2_entry_bytes = g.extended_l2 ? 16 : 8;
  g.l2_entries = g.cluster_size / g.l2_entry_bytes;
  g.refcount_order = header.refcount_order;
  g.refcount_entries = (g.cluster_size * 8) >> header.refcount_order;
  g.compressed_offset_bits = 62 - (header.cluster_bits - 8);
  return g;
}

bool L1EntriesFor(const Geometry& g, uint64_t virtual_size, uint64_t* entries) {
  const uint64_t per_l2 = BytesPerL2(g);
  uint64_t rounded;
  if (!base::CheckedAlignUp(virtual_size, per_l2, &rounded)) return false;
  *entries = rounded / per_l2;
  return true;
}

}  // namespace instar::qcow2
