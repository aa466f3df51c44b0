// Fuzz target: the VMDK sparse extent header. Invariant: an accepted header passed qemu's open
// checks: at most kMaxGtesPerGt grain table entries, a grain of at most kMaxGrainSectors
// sectors (of any size: qemu does not require a power of two, and neither do the readers and
// writers, which multiply and divide by it), and a grain table span that is not zero.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "crates/vmdk/sparse_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = instar::vmdk::ParseSparseHeader(instar::base::ByteView(data, size), size);
  if (!h.ok()) return 0;
  const instar::vmdk::SparseHeader& header = h.value();
  if (header.gtes_per_gt == 0 || header.gtes_per_gt > instar::vmdk::kMaxGtesPerGt ||
      header.grain_sectors == 0 || header.grain_sectors > instar::vmdk::kMaxGrainSectors) {
    std::abort();
  }
  return 0;
}
