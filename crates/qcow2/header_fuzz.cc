// Fuzz target: ParseHeader on arbitrary bytes, as given and zero-padded to the whole first
// cluster (what its callers pass, ParseHeader's contract). Invariants: no out-of-bounds access
// (ASan), no overflow (UBSan); on success the cluster size is one qemu accepts and every range
// it reports lies inside the bytes whenever they hold the whole cluster (given less, a range
// may lie past them: the caller then reads the cluster and parses again).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "crates/qcow2/header.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

void RequireInside(const instar::qcow2::ByteRange& r, size_t size) {
  Require(r.length == 0 || (r.offset <= size && r.length <= size - r.offset));
}

void ParseAndCheck(const uint8_t* data, size_t size) {
  auto h = instar::qcow2::ParseHeader(instar::base::ByteView(data, size));
  if (!h.ok()) return;
  const instar::qcow2::Header& header = h.value();
  Require(header.cluster_bits >= 9 && header.cluster_bits <= 21);
  Require(header.version == 2 || header.version == 3);
  Require(header.refcount_order <= 6);
  Require(header.backing_file.length <= instar::qcow2::kMaxBackingFileBytes);
  if (size < header.cluster_size) return;
  RequireInside(header.backing_file, size);
  RequireInside(header.backing_format, size);
  RequireInside(header.external_data_file, size);
  RequireInside(header.feature_names, size);
  RequireInside(header.bitmaps_extension, size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ParseAndCheck(data, size);
  // The whole first cluster, zero-filled past the end of the "file", as the callers read it.
  const uint32_t bits =
      size >= 24 ? (uint32_t{data[20]} << 24 | uint32_t{data[21]} << 16 |
                    uint32_t{data[22]} << 8 | data[23])
                 : 0;
  if (bits < 9 || bits > 21 || size >= (size_t{1} << bits)) return 0;
  std::vector<uint8_t> cluster(data, data + size);
  cluster.resize(size_t{1} << bits, 0);
  ParseAndCheck(cluster.data(), cluster.size());
  return 0;
}
