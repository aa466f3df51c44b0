// Rewrites the two lines of an embedded VMDK descriptor that carry the disk size: the extent
// line ("RW <sectors> SPARSE \\"file\\"") and ddb.geometry.cylinders (sectors / (16 * 63), as
// qemu-img create writes it). Everything else is copied byte for byte. Pure, freestanding;
// writes into a caller-given buffer.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"

namespace instar::resize {

// Writes the rewritten text to out[0, capacity) (NUL padded); false when `text` has no
// extent line or the result does not fit.
bool RewriteVmdkSize(base::ByteView text, uint64_t sectors, uint8_t* out, uint64_t capacity);

}  // namespace instar::resize
