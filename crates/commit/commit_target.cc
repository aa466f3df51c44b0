#include "crates/commit/commit_target.h"

#include "crates/base/checked.h"

namespace instar::commit {
namespace {

using base::Fail;
using image_write::ClusterMapping;
using image_write::ClusterState;
using image_write::WriteError;

void Zeros(uint8_t* out, uint64_t length) {
  for (uint64_t i = 0; i < length; ++i) out[i] = 0;
}

TargetReadError FromWrite(WriteError e) {
  TargetReadError r;
  r.write_error = e;
  return r;
}

TargetReadError FromLayer(chain_read::ReadError e) {
  TargetReadError r;
  r.from_layer = true;
  r.read_error = e;
  return r;
}

}  // namespace

CommitTarget CommitTarget::Qcow2(image_write::Qcow2Writer* writer,
                                 const base::ImageReader& reader) {
  CommitTarget t;
  t.kind_ = TargetKind::kQcow2;
  t.qcow2_ = writer;
  t.reader_ = reader;
  return t;
}

CommitTarget CommitTarget::Vmdk(image_write::VmdkWriter* writer, const base::ImageReader& reader) {
  CommitTarget t;
  t.kind_ = TargetKind::kVmdk;
  t.vmdk_ = writer;
  t.reader_ = reader;
  return t;
}

CommitTarget CommitTarget::Raw(const image_write::StepSink& sink, const base::ImageReader& reader,
                               uint64_t size) {
  CommitTarget t;
  t.kind_ = TargetKind::kRaw;
  t.raw_sink_ = sink;
  t.reader_ = reader;
  t.raw_size_ = size;
  return t;
}

uint64_t CommitTarget::cluster_size() const {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->cluster_size();
    case TargetKind::kVmdk: return vmdk_->grain_size();
    case TargetKind::kRaw: return kRawClusterSize;
  }
  return kRawClusterSize;
}

uint64_t CommitTarget::virtual_size() const {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->virtual_size();
    case TargetKind::kVmdk: return vmdk_->virtual_size();
    case TargetKind::kRaw: return raw_size_;
  }
  return raw_size_;
}

base::Result<ClusterMapping, WriteError> CommitTarget::Map(uint64_t cluster) {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->Map(cluster);
    case TargetKind::kVmdk: return vmdk_->Map(cluster);
    case TargetKind::kRaw: break;
  }
  ClusterMapping m;
  m.state = ClusterState::kData;
  m.host_offset = cluster * kRawClusterSize;  // below raw_size_, which fits
  return m;
}

base::Status<TargetReadError> CommitTarget::Read(uint64_t guest_offset, uint64_t length,
                                                 uint8_t* out, chain_read::Chain* backing,
                                                 chain_read::Layer* compressed) {
  const uint64_t size = virtual_size();
  const uint64_t cluster = cluster_size();
  while (length > 0) {
    if (guest_offset >= size) {
      Zeros(out, length);
      return {};
    }
    const uint64_t in_cluster = guest_offset % cluster;
    uint64_t n = cluster - in_cluster;
    if (n > length) n = length;
    if (n > size - guest_offset) n = size - guest_offset;
    auto mapped = Map(guest_offset / cluster);
    if (!mapped.ok()) return Fail(FromWrite(mapped.error().code), mapped.error().detail);
    const ClusterMapping& m = mapped.value();
    switch (m.state) {
      case ClusterState::kZero: Zeros(out, n); break;
      case ClusterState::kData: {
        uint64_t host = 0;
        if (!base::CheckedAdd(m.host_offset, in_cluster, &host)) {
          return Fail(FromWrite(WriteError::kCorruptL2), m.host_offset);
        }
        if (!reader_.Read(host, n, out)) return Fail(FromWrite(WriteError::kIoError), host);
        break;
      }
      case ClusterState::kCompressed: {
        if (compressed == nullptr) return Fail(FromWrite(WriteError::kCorruptL2), m.host_offset);
        auto read = compressed->Read(guest_offset, n, out);
        if (!read.ok()) return Fail(FromLayer(read.error().code), read.error().detail);
        break;
      }
      case ClusterState::kUnallocated:
        if (backing == nullptr) {
          Zeros(out, n);
        } else {
          auto read = backing->Read(guest_offset, n, out);
          if (!read.ok()) return Fail(FromLayer(read.error().code), read.error().detail);
        }
        break;
    }
    guest_offset += n;
    out += n;
    length -= n;
  }
  return {};
}

base::Status<WriteError> CommitTarget::Write(uint64_t first, uint64_t count, const uint8_t* data) {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->WriteClusters(first, count, data);
    case TargetKind::kVmdk: return vmdk_->WriteGrains(first, count, data);
    case TargetKind::kRaw: break;
  }
  // A raw base ends where its size says; the caller pads the last cluster.
  const uint64_t offset = first * kRawClusterSize;
  if (offset >= raw_size_) return Fail(WriteError::kOutOfRange, first);
  uint64_t length = count * kRawClusterSize;
  if (length > raw_size_ - offset) length = raw_size_ - offset;
  if (!image_write::Emit(raw_sink_, image_write::StepKind::kWrite, image_write::Phase::kData,
                         offset, length, data)) {
    return Fail(WriteError::kIoError, offset);
  }
  return {};
}

base::Status<WriteError> CommitTarget::Zero(uint64_t first, uint64_t count) {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->ZeroClusters(first, count);
    case TargetKind::kVmdk: return vmdk_->ZeroGrains(first, count);
    case TargetKind::kRaw: break;
  }
  const uint64_t offset = first * kRawClusterSize;
  if (offset >= raw_size_) return Fail(WriteError::kOutOfRange, first);
  uint64_t length = count * kRawClusterSize;
  if (length > raw_size_ - offset) length = raw_size_ - offset;
  if (!image_write::Emit(raw_sink_, image_write::StepKind::kZero, image_write::Phase::kData,
                         offset, length)) {
    return Fail(WriteError::kIoError, offset);
  }
  return {};
}

base::Status<WriteError> CommitTarget::Grow(uint64_t new_size, bool zero_new_range) {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->Grow(new_size, zero_new_range);
    // qemu-img cannot grow a vmdk base either; the planner refuses before asking.
    case TargetKind::kVmdk: return Fail(WriteError::kNotGrowing, new_size);
    case TargetKind::kRaw: break;
  }
  // A raw file grows with zeros (and has no backing file to hide).
  if (!image_write::Emit(raw_sink_, image_write::StepKind::kSetSize, image_write::Phase::kHeader,
                         0, new_size)) {
    return Fail(WriteError::kIoError, new_size);
  }
  raw_size_ = new_size;
  return {};
}

base::Status<WriteError> CommitTarget::Flush() {
  switch (kind_) {
    case TargetKind::kQcow2: return qcow2_->Flush();
    case TargetKind::kVmdk: return vmdk_->Flush();
    case TargetKind::kRaw: return {};
  }
  return {};
}

}  // namespace instar::commit
