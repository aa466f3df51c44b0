#include "ops/common/step_executor.h"

#include "abi/transport.h"

namespace instar::ops {

StepExecutor::StepExecutor(const abi::CallTable* table, DeviceIo& device,
                           base::Arena& arena)
    : table_(table), device_(device) {
  buffer_ = arena.Allocate(kExecutorChunk, 4096);
  zeros_ = arena.Allocate(kExecutorChunk, 4096);
  if (zeros_ != nullptr) __builtin_memset(zeros_, 0, kExecutorChunk);
}

bool StepExecutor::Apply(void* self, const image_write::Step& step) {
  return static_cast<StepExecutor*>(self)->Run(step);
}

namespace {

// Phases whose steps make earlier steps reachable or unreachable: what came before must be
// durable first. Data, new metadata and increments touch nothing a pointer reaches yet.
bool DependsOnEarlierSteps(image_write::Phase phase) {
  switch (phase) {
    case image_write::Phase::kData:
    case image_write::Phase::kNewMetadata:
    case image_write::Phase::kRefcountIncrement:
      return false;
    case image_write::Phase::kPointer:
    case image_write::Phase::kHeader:
    case image_write::Phase::kPointerDrop:
    case image_write::Phase::kRefcountDecrement:
    case image_write::Phase::kTruncate:
      return true;
  }
  return true;
}

}  // namespace

bool StepExecutor::BarrierBefore(image_write::Phase phase) {
  const bool needed = unflushed_ && phase != phase_ && DependsOnEarlierSteps(phase);
  phase_ = phase;
  if (!needed) return true;
  unflushed_ = false;
  return device_.Flush().ok();
}

bool StepExecutor::Run(const image_write::Step& step) {
  ++steps_;
  if (!BarrierBefore(step.phase)) return false;
  unflushed_ = true;
  switch (step.kind) {
    case image_write::StepKind::kWrite:
      return device_.Write(step.offset, step.length, step.bytes).ok();
    case image_write::StepKind::kZero:
      for (uint64_t done = 0; done < step.length;) {
        uint64_t n = step.length - done;
        if (n > kExecutorChunk) n = kExecutorChunk;
        if (!device_.Write(step.offset + done, n, zeros_).ok()) return false;
        done += n;
      }
      return true;
    case image_write::StepKind::kCopy:
      for (uint64_t done = 0; done < step.length;) {
        uint64_t n = step.length - done;
        if (n > kExecutorChunk) n = kExecutorChunk;
        if (!device_.Read(step.source + done, n, buffer_).ok() ||
            !device_.Write(step.offset + done, n, buffer_).ok()) {
          return false;
        }
        done += n;
      }
      return true;
    case image_write::StepKind::kSetSize:
      return device_.device() == abi::kOutputDevice && table_->set_output_size(step.length) == 0;
  }
  return false;
}

}  // namespace instar::ops
