// Fuzz target: ParseHeader on arbitrary bytes. Invariants: no out-of-bounds access (ASan),
// no overflow (UBSan); on success every range it reports lies inside the input and the
// cluster size is one qemu accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "crates/qcow2/header.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

void RequireInside(const instar::qcow2::ByteRange& r, size_t size) {
  Require(r.length == 0 || (r.offset <= size && r.length <= size - r.offset));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = instar::qcow2::ParseHeader(instar::base::ByteView(data, size));
  if (!h.ok()) return 0;
  const instar::qcow2::Header& header = h.value();
  Require(header.cluster_bits >= 9 && header.cluster_bits <= 21);
  Require(header.version == 2 || header.version == 3);
  Require(header.refcount_order <= 6);
  RequireInside(header.backing_file, size);
  RequireInside(header.backing_format, size);
  RequireInside(header.external_data_file, size);
  RequireInside(header.feature_names, size);
  RequireInside(header.bitmaps_extension, size);
  Require(header.backing_file.length <= instar::qcow2::kMaxBackingFileBytes);
  return 0;
}
