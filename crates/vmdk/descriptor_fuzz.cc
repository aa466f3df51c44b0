// Fuzz target: the VMDK descriptor parser. Invariants: every text range it reports lies inside
// the input; the extent count stays within its cap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "crates/vmdk/descriptor.h"

namespace {

void RequireInside(const instar::vmdk::TextRange& r, size_t size) {
  if (r.length != 0 && (r.offset > size || r.length > size - r.offset)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto d = std::make_unique<instar::vmdk::Descriptor>();
  if (!instar::vmdk::ParseDescriptor(instar::base::ByteView(data, size), d.get()).ok()) return 0;
  if (d->extent_count > instar::vmdk::kMaxExtents) std::abort();
  RequireInside(d->keys.create_type, size);
  RequireInside(d->keys.parent_file_name_hint, size);
  for (uint32_t i = 0; i < d->extent_count; ++i) {
    RequireInside(d->extents[i].type_name, size);
    RequireInside(d->extents[i].filename, size);
  }
  (void)d->StatedSizeBytes();
  return 0;
}
