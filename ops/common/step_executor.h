// StepExecutor: applies a planner's or writer's steps to one device, in order, as they arrive
// (image_write::StepSink); resize, rebase and commit share it. A file-size change is only
// possible on the output device. Copies and zero fills go through fixed buffers, one transfer
// cap per write. Before the first step of a phase that depends on earlier ones (pointers,
// header, pointer drops, decrements, truncation) it asks the host to flush what was written,
// so the order of architecture section 5 holds across a power loss too, as qemu's cache
// flushes make it hold. Guest-only; the buffers come from the arena given at construction.
#pragma once

#include <stdint.h>

#include "abi/call_table.h"
#include "crates/base/arena.h"
#include "crates/image_write/step.h"
#include "ops/common/device_io.h"

namespace instar::ops {

class StepExecutor {
 public:
  StepExecutor(const abi::CallTable* table, DeviceIo& device, base::Arena& arena);

  bool ready() const { return buffer_ != nullptr && zeros_ != nullptr; }
  image_write::StepSink sink() { return image_write::StepSink{this, &StepExecutor::Apply}; }
  uint64_t steps_applied() const { return steps_; }

 private:
  static bool Apply(void* self, const image_write::Step& step);
  bool Run(const image_write::Step& step);
  bool BarrierBefore(image_write::Phase phase);

  const abi::CallTable* table_;
  DeviceIo& device_;
  uint8_t* buffer_ = nullptr;  // copy bounce buffer
  uint8_t* zeros_ = nullptr;
  uint64_t steps_ = 0;
  image_write::Phase phase_ = image_write::Phase::kData;
  bool unflushed_ = false;  // a write since the last flush
};

// Bytes moved per copy or zero-fill write: small enough to leave the arena to the planners
// (whose refcount-block cache wants room for 2 MiB clusters), large enough to keep exits few.
inline constexpr uint64_t kExecutorChunk = 512u << 10;

}  // namespace instar::ops
