// Qcow2Image: what the resize planners need to know about a qcow2 image, read and validated
// once: the header, its geometry, the file size and the refcount table (decoded, in the
// arena; qemu caps it at 8 MiB). Refuses images qemu-img would not resize the same way
// (corrupt or dirty flag, external data file, encryption) and tables that lie outside the
// file. Allocates from the arena; freestanding.
#pragma once

#include <stdint.h>

#include "crates/base/arena.h"
#include "crates/base/result.h"
#include "crates/qcow2/geometry.h"
#include "crates/qcow2/header.h"
#include "crates/image_write/plan_error.h"
#include "crates/image_write/step.h"

namespace instar::image_write {

struct Qcow2Image {
  qcow2::Header header;
  qcow2::Geometry geometry;
  uint64_t file_size = 0;
  uint64_t* refcount_table = nullptr;  // host offsets of refcount blocks, 0 = none
  uint64_t refcount_table_entries = 0; // what the table's clusters hold
  uint64_t l1_clusters = 0;            // clusters the L1 table occupies

  uint64_t ClusterOf(uint64_t offset) const { return offset >> geometry.cluster_bits; }
};

// Either the image or why it cannot be opened for resizing: a header error (in `header_error`
// when `header_failed`) or a PlanError.
struct OpenFailure {
  bool header_failed = false;
  qcow2::HeaderError header_error = qcow2::HeaderError::kNotQcow2;
  PlanError plan_error = PlanError::kIoError;
};

// `head` holds the first cluster of the file (or the whole file when shorter).
base::Result<Qcow2Image, OpenFailure> OpenQcow2(const ImageReader& reader, base::ByteView head,
                                                base::Arena& arena);

// Byte offsets of the header fields resize writes (qcow2 specification, "Header").
inline constexpr uint64_t kHeaderSizeOffset = 24;
inline constexpr uint64_t kHeaderL1SizeOffset = 36;
inline constexpr uint64_t kHeaderRefcountTableOffset = 48;

}  // namespace instar::image_write
