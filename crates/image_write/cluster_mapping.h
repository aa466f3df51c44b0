// What one guest cluster (qcow2) or grain (vmdk) is in a single image, as a writer reports it
// through Map: the image's own state, pending (unflushed) changes included. Header-only,
// freestanding.
#pragma once

#include <stdint.h>

namespace instar::image_write {

enum class ClusterState : uint8_t {
  kUnallocated,  // not in this image: reads from the backing file (zeros without one)
  kZero,         // reads as zeros (qcow2 zero flag, with or without a preallocated cluster;
                 // vmdk zeroed-grain entry)
  kData,         // data at host_offset, cluster_size (grain_size) bytes
  kCompressed,   // qcow2 compressed data at host_offset, at most compressed_bytes long
};

struct ClusterMapping {
  ClusterState state = ClusterState::kUnallocated;
  uint64_t host_offset = 0;       // kData, kCompressed (and kZero with a preallocation)
  uint64_t compressed_bytes = 0;  // kCompressed: the descriptor's sector count * 512
};

}  // namespace instar::image_write
