// RefcountWindow: the reference counts the check computes for host clusters
// [base, base + capacity), stored at the image's own refcount width (so counts saturate
// exactly where the image's would, and a window based at 0 is laid out like refcount blocks:
// a rebuild writes slices of it to disk). Memory comes from the caller. Header-only,
// freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/qcow2/entries.h"

namespace instar::check {

class RefcountWindow {
 public:
  RefcountWindow() = default;
  // `capacity` clusters, at most what `byte_size` bytes hold.
  RefcountWindow(uint8_t* bytes, uint64_t byte_size, uint32_t order, uint64_t base,
                 uint64_t capacity)
      : bytes_(bytes), byte_size_(byte_size), order_(order), base_(base),
        capacity_(capacity < ((byte_size * 8) >> order) ? capacity : ((byte_size * 8) >> order)) {}

  uint64_t base() const { return base_; }
  uint64_t end() const { return base_ + capacity_; }
  uint64_t capacity() const { return capacity_; }
  uint8_t* bytes() const { return bytes_; }
  // The same memory and size, counting from `base` (the caller clears it).
  RefcountWindow At(uint64_t base) const {
    return RefcountWindow(bytes_, byte_size_, order_, base, capacity_);
  }
  bool Contains(uint64_t cluster) const { return cluster >= base_ && cluster - base_ < capacity_; }
  uint64_t Get(uint64_t cluster) const { return qcow2::GetRefcount(bytes_, order_, cluster - base_); }
  void Set(uint64_t cluster, uint64_t value) {
    qcow2::SetRefcount(bytes_, order_, cluster - base_, value);
  }
  void Clear() { __builtin_memset(bytes_, 0, byte_size_); }

 private:
  uint8_t* bytes_ = nullptr;
  uint64_t byte_size_ = 0;
  uint32_t order_ = 4;
  uint64_t base_ = 0;
  uint64_t capacity_ = 0;
};

}  // namespace instar::check
