// AnyWriter: a Qcow2Writer or a VmdkWriter behind one set of calls (units are clusters or
// grains), for the test tool and the fuzz target that drive both the same way. Host-only
// test support; header-only.
#pragma once

#include <cstdint>

#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/vmdk_writer.h"

namespace instar::image_write::testing {

struct AnyWriter {
  Qcow2Writer* qcow2 = nullptr;
  VmdkWriter* vmdk = nullptr;

  uint64_t unit() const { return qcow2 ? qcow2->cluster_size() : vmdk->grain_size(); }
  uint64_t units() const { return qcow2 ? qcow2->guest_clusters() : vmdk->guest_grains(); }
  uint64_t size() const { return qcow2 ? qcow2->virtual_size() : vmdk->virtual_size(); }
  // Whether zeroing leaves a zero entry (kZero) rather than written zeros (kData).
  bool zero_entries() const { return qcow2 ? qcow2->version() >= 3 : vmdk->zeroed_grains(); }
  base::Status<WriteError> Write(uint64_t first, uint64_t count, const uint8_t* data) {
    return qcow2 ? qcow2->WriteClusters(first, count, data) : vmdk->WriteGrains(first, count, data);
  }
  base::Status<WriteError> Zero(uint64_t first, uint64_t count) {
    return qcow2 ? qcow2->ZeroClusters(first, count) : vmdk->ZeroGrains(first, count);
  }
  base::Status<WriteError> Discard(uint64_t first, uint64_t count) {
    return qcow2 ? qcow2->DiscardClusters(first, count) : vmdk->DiscardGrains(first, count);
  }
  base::Status<WriteError> Flush() { return qcow2 ? qcow2->Flush() : vmdk->Flush(); }
  base::Result<ClusterMapping, WriteError> Map(uint64_t unit) {
    return qcow2 ? qcow2->Map(unit) : vmdk->Map(unit);
  }
};

}  // namespace instar::image_write::testing
