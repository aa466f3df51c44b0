// Fuzz target: the VMDK sparse extent header. Invariant: an accepted header has a power-of-two
// grain size and a bounded grain table size.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "crates/base/checked.h"
#include "crates/vmdk/sparse_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = instar::vmdk::ParseSparseHeader(instar::base::ByteView(data, size), size);
  if (!h.ok()) return 0;
  if (!instar::base::IsPowerOfTwo(h.value().grain_sectors) || h.value().gtes_per_gt == 0) {
    std::abort();
  }
  return 0;
}
