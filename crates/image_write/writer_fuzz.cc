// Fuzz target: Qcow2Writer / VmdkWriter opened on arbitrary bytes, driven through a few
// requests. Layout of an input: byte 0 selects the format (bit 0: vmdk) and the sink (bit 1:
// steps applied to an in-memory copy that grows, up to a cap, so evicted tables are read
// back; else a dry run); bytes 1..24 are eight requests (kind and count, then a 16-bit first
// cluster); the rest is the image. Invariants: no crash, no hang, no out-of-bounds access
// (ASan), no overflow (UBSan); every step stays below the cap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crates/base/arena.h"
#include "crates/image_write/testing/any_writer.h"

namespace {

using instar::image_write::ImageReader;
using instar::image_write::Step;
using instar::image_write::StepKind;
using instar::image_write::StepSink;
using instar::image_write::testing::AnyWriter;

constexpr uint64_t kMaxFile = 64u << 20;
constexpr size_t kControlBytes = 25;

struct MemoryFile {
  std::vector<uint8_t> bytes;

  static bool Read(void* self, uint64_t offset, uint64_t length, uint8_t* out) {
    const auto& b = static_cast<MemoryFile*>(self)->bytes;
    if (offset > b.size() || length > b.size() - offset) return false;
    std::memcpy(out, b.data() + offset, length);
    return true;
  }
  static bool Apply(void* self, const Step& step) {
    auto& b = static_cast<MemoryFile*>(self)->bytes;
    uint64_t end = step.kind == StepKind::kSetSize ? step.length : step.offset + step.length;
    if (end < step.offset || end > kMaxFile) return false;
    if (end > b.size() && step.kind != StepKind::kSetSize) b.resize(end);
    switch (step.kind) {
      case StepKind::kWrite: std::memcpy(b.data() + step.offset, step.bytes, step.length); break;
      case StepKind::kZero: std::memset(b.data() + step.offset, 0, step.length); break;
      case StepKind::kCopy:
        if (step.source > b.size() || step.length > b.size() - step.source) return false;
        std::memmove(b.data() + step.offset, b.data() + step.source, step.length);
        break;
      case StepKind::kSetSize: b.resize(step.length); break;
    }
    return true;
  }
};

void Drive(AnyWriter& w, const uint8_t* control) {
  std::vector<uint8_t> data;
  const uint64_t unit = w.unit(), units = w.units();
  for (int op = 0; op < 8; ++op) {
    const uint8_t* c = control + 3 * op;
    const uint64_t first = (uint64_t{c[1]} << 8 | c[2]) % (units + 1);
    // Requests stay under 1 MiB of data.
    const uint64_t cap = unit >= (1u << 20) ? 1 : (1u << 20) / unit;
    const uint64_t count = 1 + (c[0] >> 2) < cap ? 1 + (c[0] >> 2) : cap;
    switch (c[0] & 3) {
      case 0:
        data.assign(count * unit, static_cast<uint8_t>(op + 1));
        (void)w.Write(first, count, data.data());
        break;
      case 1: (void)w.Zero(first, count); break;
      case 2: (void)w.Discard(first, count); break;
      case 3: (void)w.Map(first); break;
    }
  }
  (void)w.Flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kControlBytes) return 0;
  static std::vector<uint8_t> memory(12u << 20);
  instar::base::Arena arena(memory.data(), memory.size());
  MemoryFile file;
  file.bytes.assign(data + kControlBytes, data + size);
  const bool vmdk = (data[0] & 1) != 0;
  const bool apply = (data[0] & 2) != 0;
  const ImageReader reader{&file, &MemoryFile::Read, file.bytes.size()};
  const StepSink sink = apply ? StepSink{&file, &MemoryFile::Apply} : StepSink{};
  AnyWriter w;
  if (vmdk) {
    auto opened = instar::image_write::VmdkWriter::Open(reader, sink, arena);
    if (!opened.ok()) return 0;
    w.vmdk = opened.value();
  } else {
    auto opened = instar::image_write::Qcow2Writer::Open(reader, sink, arena);
    if (!opened.ok()) return 0;
    w.qcow2 = opened.value();
  }
  Drive(w, data + 1);
  return 0;
}
