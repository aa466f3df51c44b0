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
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/vmdk_writer.h"

namespace {

using instar::image_write::ImageReader;
using instar::image_write::Step;
using instar::image_write::StepKind;
using instar::image_write::StepSink;

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

template <class Writer>
void Drive(Writer* w, const uint8_t* control, uint64_t unit, uint64_t units) {
  std::vector<uint8_t> data;
  for (int op = 0; op < 8; ++op) {
    const uint8_t kind = control[3 * op] & 3;
    uint64_t count = 1 + (control[3 * op] >> 2);
    const uint64_t first = (uint64_t{control[3 * op + 1]} << 8 | control[3 * op + 2]) % (units + 1);
    const uint64_t cap = (1u << 20) / unit;
    if (count > cap) count = cap == 0 ? 1 : cap;
    switch (kind) {
      case 0:
        data.assign(count * unit, static_cast<uint8_t>(op + 1));
        if constexpr (requires { w->WriteClusters(0, 0, nullptr); }) {
          (void)w->WriteClusters(first, count, data.data());
        } else {
          (void)w->WriteGrains(first, count, data.data());
        }
        break;
      case 1:
        if constexpr (requires { w->ZeroClusters(0, 0); }) {
          (void)w->ZeroClusters(first, count);
        } else {
          (void)w->ZeroGrains(first, count);
        }
        break;
      case 2:
        if constexpr (requires { w->DiscardClusters(0, 0); }) {
          (void)w->DiscardClusters(first, count);
        } else {
          (void)w->DiscardGrains(first, count);
        }
        break;
      case 3:
        (void)w->Map(first);
        break;
    }
  }
  (void)w->Flush();
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
  if (vmdk) {
    auto w = instar::image_write::VmdkWriter::Open(reader, sink, arena);
    if (w.ok()) Drive(w.value(), data + 1, w.value()->grain_size(), w.value()->guest_grains());
  } else {
    auto w = instar::image_write::Qcow2Writer::Open(reader, sink, arena);
    if (w.ok()) {
      Drive(w.value(), data + 1, w.value()->cluster_size(), w.value()->guest_clusters());
    }
  }
  return 0;
}
