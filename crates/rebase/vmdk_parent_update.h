// The text of a VMDK descriptor after a rebase: parentCID becomes the new parent's CID, in
// qemu's spelling (hex without leading zeros; ffffffff for none, as qemu-img create writes it),
// and parentFileNameHint names the new backing file, or goes away. A missing hint line is added
// after createType, where qemu-img create puts it. Every other byte is copied. qemu-img 7.2
// rebases no VMDK ("Operation not supported"); this is what its vmdk create writes for the same
// parent. Pure, freestanding; writes into a caller-given buffer.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/rebase/new_backing.h"

namespace instar::rebase {

inline constexpr uint32_t kNoParentCid = 0xFFFFFFFF;

// Writes the new text to out[0, capacity), NUL padded; false when it does not fit or `text`
// has no parentCID line to rewrite.
bool RewriteVmdkParent(base::ByteView text, const NewBacking& backing, uint32_t parent_cid,
                       uint8_t* out, uint64_t capacity);

}  // namespace instar::rebase
