// Plans growing a sparse VMDK extent (qemu-img 7.2 resizes no VMDK; this is instar's own): a
// monolithicSparse image, or the last extent of a twoGbMaxExtentSparse one (PlanSparseExtentGrow):
// the capacity in the header and in the embedded descriptor, grain tables for the new range
// (zero-filled by extending the file), grain-directory entries pointing to them in the
// primary and the redundant directory (extended in place when their sectors have room, else
// both written anew at the end of the file), and stale entries past the old end cleared. The
// header, with the capacity, is written last, so an interrupted grow leaves the old disk.
// Reads through `reader`; allocates from the arena; freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/result.h"
#include "crates/image_write/plan_error.h"
#include "crates/image_write/step.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::resize {

using image_write::ImageReader;
using image_write::PlanError;
using image_write::StepSink;

struct VmdkImage {
  vmdk::SparseHeader header;
  base::ByteView header_bytes;     // the first 512 bytes of the file
  base::ByteView descriptor_text;  // the embedded descriptor's sectors
  const vmdk::Descriptor* descriptor = nullptr;
  uint64_t file_size = 0;
};

// True when the embedded descriptor names one sparse extent and createType monolithicSparse.
bool IsMonolithicSparse(const VmdkImage& image);

struct VmdkGrowSummary {
  uint64_t new_grain_tables = 0;
  bool directories_relocated = false;
};

// How the file is extended for new tables: by a size change (the output device), or by
// writing the zeros (an extent attached as an input device, which only writes can extend).
enum class ExtendBy { kSetSize, kWritingZeros };

// `new_size` must be larger than the capacity and a multiple of 512.
base::Result<VmdkGrowSummary, PlanError> PlanVmdkGrow(const VmdkImage& image, uint64_t new_size,
                                                      const ImageReader& reader,
                                                      base::Arena& arena, const StepSink& sink);

// Grows one sparse extent of a descriptor file (twoGbMaxExtentSparse) to `new_capacity`
// sectors (larger than its capacity): the same tables and header as PlanVmdkGrow, no
// embedded descriptor, the file extended by writing. `image.descriptor` is not used.
base::Result<VmdkGrowSummary, PlanError> PlanSparseExtentGrow(const VmdkImage& image,
                                                              uint64_t new_capacity,
                                                              const ImageReader& reader,
                                                              base::Arena& arena,
                                                              const StepSink& sink);

}  // namespace instar::resize
