// OverlayTarget: the overlay of a safe rebase as the copy loop sees it, whichever writer
// holds it: guest units (qcow2 clusters, vmdk grains) the overlay owns or not, and writes of
// whole units through the writer's crash-safe step order. Freestanding; a small value.
#pragma once

#include <stdint.h>

#include "crates/base/result.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/vmdk_writer.h"
#include "crates/image_write/write_error.h"

namespace instar::rebase {

class OverlayTarget {
 public:
  static OverlayTarget Qcow2(image_write::Qcow2Writer* writer);
  static OverlayTarget Vmdk(image_write::VmdkWriter* writer);

  uint64_t unit_bytes() const;    // cluster or grain size
  uint64_t virtual_size() const;
  // qemu's bdrv_is_allocated on the overlay alone: data, zero or compressed.
  base::Result<bool, image_write::WriteError> Owns(uint64_t unit);
  // Units [first, first + count) hold `data` (count * unit_bytes()).
  base::Status<image_write::WriteError> Write(uint64_t first, uint64_t count,
                                              const uint8_t* data);
  // Units [first, first + count) read as zeros.
  base::Status<image_write::WriteError> Zero(uint64_t first, uint64_t count);
  base::Status<image_write::WriteError> Flush();

 private:
  image_write::Qcow2Writer* qcow2_ = nullptr;
  image_write::VmdkWriter* vmdk_ = nullptr;
};

}  // namespace instar::rebase
