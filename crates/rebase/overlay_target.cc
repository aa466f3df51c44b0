#include "crates/rebase/overlay_target.h"

namespace instar::rebase {

OverlayTarget OverlayTarget::Qcow2(image_write::Qcow2Writer* writer) {
  OverlayTarget t;
  t.qcow2_ = writer;
  return t;
}

OverlayTarget OverlayTarget::Vmdk(image_write::VmdkWriter* writer) {
  OverlayTarget t;
  t.vmdk_ = writer;
  return t;
}

uint64_t OverlayTarget::unit_bytes() const {
  return qcow2_ != nullptr ? qcow2_->cluster_size() : vmdk_->grain_size();
}

uint64_t OverlayTarget::virtual_size() const {
  return qcow2_ != nullptr ? qcow2_->virtual_size() : vmdk_->virtual_size();
}

base::Result<bool, image_write::WriteError> OverlayTarget::Owns(uint64_t unit) {
  auto mapped = qcow2_ != nullptr ? qcow2_->Map(unit) : vmdk_->Map(unit);
  if (!mapped.ok()) return mapped.error();
  return mapped.value().state != image_write::ClusterState::kUnallocated;
}

base::Status<image_write::WriteError> OverlayTarget::Write(uint64_t first, uint64_t count,
                                                           const uint8_t* data) {
  return qcow2_ != nullptr ? qcow2_->WriteClusters(first, count, data)
                           : vmdk_->WriteGrains(first, count, data);
}

base::Status<image_write::WriteError> OverlayTarget::Zero(uint64_t first, uint64_t count) {
  return qcow2_ != nullptr ? qcow2_->ZeroClusters(first, count)
                           : vmdk_->ZeroGrains(first, count);
}

base::Status<image_write::WriteError> OverlayTarget::Flush() {
  return qcow2_ != nullptr ? qcow2_->Flush() : vmdk_->Flush();
}

}  // namespace instar::rebase
