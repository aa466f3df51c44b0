// Fuzz target: a Layer opened on arbitrary bytes (the first byte picks the format), mapped
// from start to end and read in pieces, alone and under a raw layer in a chain. Invariants:
// no crash, every Map run is non-empty and within what was asked, and Read agrees with
// Map about zero and unallocated ranges.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"

namespace {

using instar::chain_read::Chain;
using instar::chain_read::ExtentKind;
using instar::chain_read::ImageFormat;
using instar::chain_read::Layer;

struct Image {
  const uint8_t* data;
  size_t size;
};

bool ReadImage(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  const Image& image = *static_cast<const Image*>(context);
  if (offset > image.size || length > image.size - offset) return false;
  std::memcpy(out, image.data + offset, length);
  return true;
}

constexpr uint64_t kMaxSteps = 512;
constexpr uint64_t kPiece = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static std::vector<uint8_t> memory(12u << 20);
  static std::vector<uint8_t> buffer(kPiece);
  instar::base::Arena arena(memory.data(), memory.size());
  const ImageFormat format = static_cast<ImageFormat>(data[0] % 3);
  Image image{data + 1, size - 1};
  const instar::base::ImageReader reader{&image, ReadImage, image.size};
  auto opened = Layer::Open(format, reader, arena, 3 * 32 * 1024);
  if (!opened.ok()) return 0;
  Layer* layer = opened.value();
  const uint64_t end = layer->virtual_size();

  uint64_t pos = 0;
  for (uint64_t step = 0; step < kMaxSteps && pos < end; ++step) {
    const uint64_t want = end - pos < kPiece ? end - pos : kPiece;
    auto mapped = layer->Map(pos, want);
    if (!mapped.ok()) break;
    const auto& e = mapped.value();
    if (e.length == 0 || e.length > want) std::abort();
    if (layer->ReadExtent(pos, e, buffer.data()).ok() &&
        (e.kind == ExtentKind::kZero || e.kind == ExtentKind::kUnallocated)) {
      for (uint64_t i = 0; i < e.length; ++i) {
        if (buffer[i] != 0) std::abort();
      }
    }
    pos += e.length;
  }

  // The same layer over a raw layer of the same bytes, read through the chain in odd pieces.
  auto raw = Layer::Open(ImageFormat::kRaw, reader, arena);
  if (!raw.ok()) return 0;
  Layer* layers[2] = {layer, raw.value()};
  auto chain = Chain::Of(layers, 2);
  if (!chain.ok()) std::abort();
  pos = 0;
  for (uint64_t step = 0; step < 16 && pos < end; ++step) {
    const uint64_t n = kPiece - 1000;
    if (!chain.value().Read(pos, n, buffer.data()).ok()) break;
    pos += n;
  }
  return 0;
}
