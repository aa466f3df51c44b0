// Rewrites the lines of a VMDK descriptor (embedded, or a descriptor file) that carry the
// disk size: the last extent line ("RW <sectors> SPARSE \"file\"") gets a new size, new extent
// lines may follow it (as qemu-img create writes them), and ddb.geometry.cylinders becomes
// sectors / (heads * sectors per track), with the heads and sectors the text states (16 and
// 63 when it states none, as qemu-img create writes for IDE). Everything else is copied byte
// for byte. Pure, freestanding; writes into a caller-given buffer.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"

namespace instar::resize {

// One extent line to add after the last one: RW <sectors> SPARSE "<name>".
struct NewExtentLine {
  uint64_t sectors = 0;
  base::ByteView name;
};

struct DescriptorSizes {
  uint64_t total_sectors = 0;  // the disk's new size (for the geometry)
  uint64_t last_extent_sectors = 0;
  const NewExtentLine* added = nullptr;
  uint32_t added_count = 0;
  // An offset inside the last extent's line (vmdk::Descriptor's filename range), or, when
  // absent, the last line starting with "RW ".
  uint64_t last_extent_at = UINT64_MAX;
};

// Writes the rewritten text to out[0, capacity) (NUL padded) and its length to `*length`;
// false when `text` has no extent line or the result does not fit.
bool RewriteVmdkDescriptor(base::ByteView text, const DescriptorSizes& sizes, uint8_t* out,
                           uint64_t capacity, uint64_t* length);

// True when the createType value (`value`, a range of the text, quoted or not) is `want`.
bool CreateTypeIs(base::ByteView value, const char* want);

// A one-extent descriptor (monolithicSparse): its extent and the geometry become `sectors`.
bool RewriteVmdkSize(base::ByteView text, uint64_t sectors, uint8_t* out, uint64_t capacity);

}  // namespace instar::resize
