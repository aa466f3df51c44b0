// Fuzz target: CommitPlan with a hostile top over a hostile qcow2 base. The input is a 4-byte
// little-endian base length, the base's bytes, then the top's bytes (a qcow2 image). The
// base's writer applies its steps to a copy of the base in memory (bounded). Invariants: no
// crash, no unbounded work; when the commit succeeds, the base reads over the top's size what
// the top read before.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"
#include "crates/commit/commit_plan.h"
#include "crates/commit/commit_target.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/step.h"

namespace {

using Bytes = std::vector<uint8_t>;
using instar::chain_read::Chain;
using instar::chain_read::ImageFormat;
using instar::chain_read::Layer;

// Images and steps beyond these are skipped or refused: the fuzzer looks for crashes and
// wrong content, not for slow large images.
constexpr uint64_t kMaxVirtualSize = 8u << 20;
constexpr uint64_t kMaxFileSize = 64u << 20;

bool ReadBytes(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  const Bytes& b = *static_cast<const Bytes*>(context);
  if (offset > b.size() || length > b.size() - offset) return false;
  std::memcpy(out, b.data() + offset, length);
  return true;
}

bool ReadZeroFilled(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  const Bytes& b = *static_cast<const Bytes*>(context);
  for (uint64_t i = 0; i < length; ++i) out[i] = offset + i < b.size() ? b[offset + i] : 0;
  return true;
}

bool Apply(void* context, const instar::image_write::Step& step) {
  Bytes& b = *static_cast<Bytes*>(context);
  using instar::image_write::StepKind;
  const uint64_t end = step.offset + step.length;
  if (step.offset > kMaxFileSize || step.length > kMaxFileSize - step.offset) return false;
  if (step.kind == StepKind::kSetSize) {
    b.resize(step.length);
    return true;
  }
  if (step.kind == StepKind::kCopy &&
      (step.source > b.size() || step.length > b.size() - step.source)) {
    return false;
  }
  const Bytes source = step.kind == StepKind::kCopy
                           ? Bytes(b.begin() + step.source, b.begin() + step.source + step.length)
                           : Bytes();
  if (b.size() < end) b.resize(end);
  switch (step.kind) {
    case StepKind::kWrite: std::memcpy(b.data() + step.offset, step.bytes, step.length); break;
    case StepKind::kZero: std::memset(b.data() + step.offset, 0, step.length); break;
    case StepKind::kCopy: std::memcpy(b.data() + step.offset, source.data(), step.length); break;
    case StepKind::kSetSize: break;
  }
  return true;
}

// What the chain [layers...] reads over [0, length), or empty when it cannot be read.
Bytes View(Layer* const* layers, uint32_t count, uint64_t length) {
  auto chain = Chain::Of(layers, count);
  if (!chain.ok()) return {};
  Bytes out(length);
  if (!chain.value().Read(0, length, out.data()).ok()) return {};
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint32_t base_length = data[0] | data[1] << 8 | data[2] << 16 | uint32_t{data[3]} << 24;
  if (base_length > size - 4) return 0;
  Bytes base(data + 4, data + 4 + base_length);
  const Bytes old_base = base;
  const Bytes top(data + 4 + base_length, data + size);
  static std::vector<uint8_t> memory(12u << 20);
  static std::vector<uint8_t> buffer(instar::commit::kCommitBatchBytes);
  instar::base::Arena arena(memory.data(), memory.size());

  const instar::base::ImageReader top_reader{const_cast<Bytes*>(&top), ReadBytes, top.size()};
  const instar::base::ImageReader old_reader{const_cast<Bytes*>(&old_base), ReadBytes,
                                             old_base.size()};
  auto top_layer = Layer::Open(ImageFormat::kQcow2, top_reader, arena, 64 * 1024);
  auto old_layer = Layer::Open(ImageFormat::kQcow2, old_reader, arena, 64 * 1024);
  if (!top_layer.ok() || !old_layer.ok()) return 0;
  const uint64_t top_size = top_layer.value()->virtual_size();
  if (top_size > kMaxVirtualSize || old_layer.value()->virtual_size() > kMaxVirtualSize) return 0;
  Layer* before[] = {top_layer.value(), old_layer.value()};
  const Bytes expected = View(before, 2, top_size);
  if (expected.size() != top_size) return 0;

  const instar::base::ImageReader base_reader{&base, ReadBytes, base.size()};
  auto writer = instar::image_write::Qcow2Writer::Open(
      base_reader, instar::image_write::StepSink{&base, Apply}, arena);
  if (!writer.ok()) return 0;
  auto target = instar::commit::CommitTarget::Qcow2(
      writer.value(), instar::base::ImageReader{&base, ReadZeroFilled, UINT64_MAX});
  Layer* above_layers[] = {top_layer.value()};
  auto above = Chain::Of(above_layers, 1);
  if (!above.ok()) return 0;
  instar::commit::CommitLayers layers{&above.value(), &target, nullptr};
  instar::commit::CommitPlan plan(layers, buffer.data(), buffer.size(),
                                  instar::commit::CommitProgress{});
  if (!plan.GrowBase().ok()) return 0;
  auto base_layer = Layer::Open(ImageFormat::kQcow2, base_reader, arena, 64 * 1024);
  if (!plan.Copy(base_layer.ok() ? base_layer.value() : nullptr).ok()) return 0;

  const instar::base::ImageReader after_reader{&base, ReadBytes, base.size()};
  auto after = Layer::Open(ImageFormat::kQcow2, after_reader, arena, 64 * 1024);
  if (!after.ok()) std::abort();  // a committed base must still open
  Layer* committed[] = {after.value()};
  const Bytes now = View(committed, 1, top_size);
  if (now.size() == top_size && now != expected) std::abort();
  return 0;
}
