// Chain: layers stacked top (index 0) to bottom, read the way qemu reads a backing chain from
// its top: each guest range comes from the topmost layer that allocates it (data, compressed
// or zero; a zero range reads as zeros and hides the layers below), and a range past a lower
// layer's virtual size reads as zeros there (a backing file smaller than its overlay reads as
// zeros beyond its end). Ranges no layer allocates read as zeros.
//
// A Chain is a view over layers the caller opened (Layer::Open) and owns; a sub-chain is
// another Chain over a suffix of the same array (rebase reads the old backing chain as
// layers [1, n) and the new one as a chain of its own). Freestanding; no allocation (a
// Chain is a small value).
#pragma once

#include <stdint.h>

#include "crates/base/result.h"
#include "crates/chain_read/layer.h"
#include "crates/chain_read/read_error.h"

namespace instar::chain_read {

// qemu-img's deepest supported chain is not bounded, but instar's chain config is.
inline constexpr uint32_t kMaxLayers = 17;

// Where a guest run comes from in layers [first, last).
struct ChainExtent {
  uint32_t layer = 0;  // index of the layer that decides it; == `last` when none of
                       // [first, last) allocates it
  Extent extent;       // that layer's mapping; kZero with host_offset 0 when the run lies
                       // past that layer's virtual size (qemu: zeros allocated there);
                       // kUnallocated when layer == last
};

class Chain {
 public:
  // `layers[0]` is the top. At most kMaxLayers (else kTooManyLayers); at least one.
  static base::Result<Chain, ReadError> Of(Layer* const* layers, uint32_t count);

  Chain() = default;
  uint32_t count() const { return count_; }
  Layer& layer(uint32_t index) const { return *layers_[index]; }
  // The top layer's virtual size: what the guest sees.
  uint64_t virtual_size() const { return layers_[0]->virtual_size(); }

  // Reads what qemu reads from the top of the chain: [guest_offset, guest_offset + length).
  // Bytes at or past virtual_size() read as zeros (not an error), so a caller can read any
  // range of a larger overlay through a smaller backing chain.
  base::Status<ReadError> Read(uint64_t guest_offset, uint64_t length, uint8_t* out);

  // The longest run from `guest_offset` (at most `max_length` bytes, > 0) that one layer of
  // [first, last) decides uniformly, and which (first < last <= count()). qemu's
  // bdrv_is_allocated_above(top = first, base = last) is `result.layer != last`: a layer
  // allocates a range when it maps it to data, compressed or zero, or when the range lies
  // past its virtual size (qemu treats those zeros as allocated there). A run never crosses a
  // change of deciding layer, kind or host contiguity. guest_offset must be below
  // virtual_size() of layer `first` (else kOutOfRange).
  base::Result<ChainExtent, ReadError> Locate(uint32_t first, uint32_t last,
                                              uint64_t guest_offset, uint64_t max_length);

 private:
  Layer* layers_[kMaxLayers] = {};
  uint32_t count_ = 0;
};

}  // namespace instar::chain_read
