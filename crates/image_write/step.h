// The vocabulary shared by the image planners and writers (resize, image_write) and the
// operations that apply their output:
// an ordered stream of Steps (byte writes, zero fills, in-file copies, a file-size change),
// each labelled with the crash-safety phase it belongs to, and the sink a planner hands its
// steps to. Planners read the image through base::ImageReader (re-exported here). Plain
// function pointers (no virtual calls: freestanding code has no C++ runtime). Header-only,
// freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/image_reader.h"

namespace instar::image_write {

// Where a step sits in the write ordering of architecture section 5.
enum class Phase : uint8_t {
  kData,               // guest data: clusters nothing points to yet, or in-place overwrites
  kNewMetadata,        // clusters nothing points to yet (new L1, refcount table, L2 copies)
  kRefcountIncrement,  // refcount blocks gaining references for clusters not yet pointed to
  kPointer,            // a table entry gains a pointer (refcount table entries, L1 entries)
  kHeader,             // header fields: sizes, table offsets
  kPointerDrop,        // a table entry loses its pointer
  kRefcountDecrement,  // refcount blocks losing references no pointer holds any more
  kTruncate,           // the file shrinks past clusters whose refcount is zero
};

enum class StepKind : uint8_t {
  kWrite,    // `length` bytes from `bytes` at `offset`
  kZero,     // `length` zero bytes at `offset`
  kCopy,     // `length` bytes from `source` to `offset` (ranges never overlap)
  kSetSize,  // the file becomes `length` bytes long
};

struct Step {
  StepKind kind = StepKind::kWrite;
  Phase phase = Phase::kNewMetadata;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t source = 0;
  const uint8_t* bytes = nullptr;  // valid only during the emit call
};

// Receives steps in order and applies (or records) each before returning; false stops the
// planner with an I/O error. A null `emit` makes a dry run: everything is read and validated
// and nothing is written.
struct StepSink {
  void* context = nullptr;
  bool (*emit)(void* context, const Step& step) = nullptr;

  bool dry_run() const { return emit == nullptr; }
  bool Emit(const Step& step) const { return emit == nullptr || emit(context, step); }
};

// Builds a step from its fields and emits it.
inline bool Emit(const StepSink& sink, StepKind kind, Phase phase, uint64_t offset,
                 uint64_t length, const uint8_t* bytes = nullptr, uint64_t source = 0) {
  Step step;
  step.kind = kind;
  step.phase = phase;
  step.offset = offset;
  step.length = length;
  step.bytes = bytes;
  step.source = source;
  return sink.Emit(step);
}

// The planners' reader (shared with crates/chain_read).
using ImageReader = base::ImageReader;

}  // namespace instar::image_write
