// CommitTarget: the base image as commit writes it, whatever its format: qcow2 through
// image_write's Qcow2Writer, a monolithicSparse vmdk through its VmdkWriter, raw as direct
// steps. It speaks in the base's clusters (qcow2 clusters, vmdk grains, 64 KiB for raw) and
// reads back what the base itself holds for a guest range, so commit can fill the parts of a
// base cluster the layers above do not own. Freestanding; no allocation (a small value that
// borrows the writer and readers it is given).
#pragma once

#include <stdint.h>

#include "crates/base/image_reader.h"
#include "crates/base/result.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"
#include "crates/image_write/cluster_mapping.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/step.h"
#include "crates/image_write/vmdk_writer.h"
#include "crates/image_write/write_error.h"

namespace instar::commit {

// Where reading the base's own content failed: the writer's mapping or a layer's read.
struct TargetReadError {
  bool from_layer = false;  // false: write_error is set; true: read_error is set
  image_write::WriteError write_error = image_write::WriteError::kIoError;
  chain_read::ReadError read_error = chain_read::ReadError::kIoError;
};

enum class TargetKind : uint8_t { kQcow2, kVmdk, kRaw };

class CommitTarget {
 public:
  // `reader` reads the base's file as it is now, past its end as zeros (qemu's file driver
  // zero-fills short reads); it must see every step already applied.
  static CommitTarget Qcow2(image_write::Qcow2Writer* writer, const base::ImageReader& reader);
  static CommitTarget Vmdk(image_write::VmdkWriter* writer, const base::ImageReader& reader);
  // A raw base of `size` bytes (a multiple of 512): written in place with `sink`'s steps.
  static CommitTarget Raw(const image_write::StepSink& sink, const base::ImageReader& reader,
                          uint64_t size);

  TargetKind kind() const { return kind_; }
  uint64_t cluster_size() const;
  uint64_t virtual_size() const;

  // What the base reads for [guest_offset, +length) as the guest of the base sees it (its own
  // clusters, then `backing` for what it leaves unallocated, zeros past its virtual size).
  // `backing` is the base's backing chain (null: none); `compressed` reads the base's own
  // compressed clusters (a Layer over the base, null when it has none to read). Unflushed
  // writes are seen through the writer's mapping.
  base::Status<TargetReadError> Read(uint64_t guest_offset, uint64_t length, uint8_t* out,
                                     chain_read::Chain* backing, chain_read::Layer* compressed);

  // Base clusters [first, first + count) hold `data` (count * cluster_size() bytes).
  base::Status<image_write::WriteError> Write(uint64_t first, uint64_t count,
                                              const uint8_t* data);
  // Base clusters [first, first + count) read as zeros.
  base::Status<image_write::WriteError> Zero(uint64_t first, uint64_t count);
  // Grows the virtual size to `new_size` (qcow2 and raw; vmdk never calls it: qemu refuses).
  base::Status<image_write::WriteError> Grow(uint64_t new_size, bool zero_new_range);
  base::Status<image_write::WriteError> Flush();

  CommitTarget() = default;

 private:
  base::Result<image_write::ClusterMapping, image_write::WriteError> Map(uint64_t cluster);

  TargetKind kind_ = TargetKind::kRaw;
  image_write::Qcow2Writer* qcow2_ = nullptr;
  image_write::VmdkWriter* vmdk_ = nullptr;
  image_write::StepSink raw_sink_;
  base::ImageReader reader_;
  uint64_t raw_size_ = 0;
};

// The unit a raw base is batched in.
inline constexpr uint64_t kRawClusterSize = 64u << 10;

}  // namespace instar::commit
