#include "crates/chain_read/chain.h"

#include "crates/base/checked.h"

namespace instar::chain_read {

using base::Fail;

base::Result<Chain, ReadError> Chain::Of(Layer* const* layers, uint32_t count) {
  if (count == 0 || count > kMaxLayers) return Fail(ReadError::kTooManyLayers, count);
  Chain chain;
  for (uint32_t i = 0; i < count; ++i) chain.layers_[i] = layers[i];
  chain.count_ = count;
  return chain;
}

base::Result<ChainExtent, ReadError> Chain::Locate(uint32_t first, uint32_t last,
                                                   uint64_t guest_offset, uint64_t max_length) {
  if (first >= last || last > count_ || max_length == 0 ||
      guest_offset >= layers_[first]->virtual_size()) {
    return Fail(ReadError::kOutOfRange, guest_offset);
  }
  uint64_t length = max_length;
  for (uint32_t i = first; i < last; ++i) {
    Layer& layer = *layers_[i];
    ChainExtent found;
    found.layer = i;
    if (guest_offset >= layer.virtual_size()) {
      // Past a lower layer's end: zeros, allocated there (qemu's block status above).
      found.extent.kind = ExtentKind::kZero;
      found.extent.length = length;
      return found;
    }
    TRY(found.extent, layer.Map(guest_offset, length));
    if (found.extent.kind != ExtentKind::kUnallocated) return found;
    length = found.extent.length;
  }
  ChainExtent none;
  none.layer = last;
  none.extent.length = length;
  return none;
}

base::Status<ReadError> Chain::Read(uint64_t guest_offset, uint64_t length, uint8_t* out) {
  uint64_t end = 0;
  if (!base::CheckedAdd(guest_offset, length, &end)) {
    return Fail(ReadError::kOutOfRange, guest_offset);
  }
  const uint64_t size = virtual_size();
  uint64_t done = 0;
  while (done < length) {
    const uint64_t pos = guest_offset + done;
    if (pos >= size) {
      for (uint64_t i = done; i < length; ++i) out[i] = 0;
      return {};
    }
    TRY(const ChainExtent found, Locate(0, count_, pos, length - done));
    if (found.layer == count_) {
      for (uint64_t i = 0; i < found.extent.length; ++i) out[done + i] = 0;
    } else {
      TRY_STATUS(layers_[found.layer]->ReadExtent(pos, found.extent, out + done));
    }
    done += found.extent.length;
  }
  return {};
}

}  // namespace instar::chain_read
