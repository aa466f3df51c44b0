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

bool StepExecutor::Run(const image_write::Step& step) {
  ++steps_;
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
