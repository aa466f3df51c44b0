// DataRun: gathers a writer's guest-data writes into as few steps as possible: a piece that
// continues the queued one both in the file and in the caller's memory (or is zeros after
// zeros) extends it; anything else emits the queued piece first. The writer emits what is
// queued before any metadata that points to it, and before returning to its caller (the
// caller's buffer is valid only during the call). Header-only, freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/image_write/step.h"

namespace instar::image_write {

class DataRun {
 public:
  // Queues `length` bytes for `offset` (`bytes` null: zeros). False: the sink refused the
  // piece emitted to make room (its offset is failed_offset()).
  bool Add(const StepSink& sink, uint64_t offset, uint64_t length, const uint8_t* bytes) {
    const bool continues =
        length_ != 0 && offset_ + length_ == offset &&
        ((bytes == nullptr && bytes_ == nullptr) ||
         (bytes != nullptr && bytes_ != nullptr && bytes_ + length_ == bytes));
    if (continues) {
      length_ += length;
      return true;
    }
    if (!Emit(sink)) return false;
    offset_ = offset;
    length_ = length;
    bytes_ = bytes;
    return true;
  }

  // Emits the queued piece (Phase::kData), if any. False: the sink refused it.
  bool Emit(const StepSink& sink) {
    if (length_ == 0) return true;
    const uint64_t length = length_;
    length_ = 0;
    failed_offset_ = offset_;
    if (!image_write::Emit(sink, bytes_ == nullptr ? StepKind::kZero : StepKind::kWrite,
                           Phase::kData, offset_, length, bytes_)) {
      return false;
    }
    ++steps_;
    return true;
  }

  uint64_t steps() const { return steps_; }
  uint64_t failed_offset() const { return failed_offset_; }

 private:
  uint64_t offset_ = 0;
  uint64_t length_ = 0;
  const uint8_t* bytes_ = nullptr;
  uint64_t steps_ = 0;
  uint64_t failed_offset_ = 0;
};

}  // namespace instar::image_write
