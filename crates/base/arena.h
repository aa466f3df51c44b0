// Arena: a bump allocator over memory the caller owns (the guest's scratch region, or a test
// buffer). No global heap anywhere in freestanding code; Reset() frees everything at once.
// Header-only, freestanding.
#pragma once

#include <stdint.h>

namespace instar::base {

class Arena {
 public:
  Arena(uint8_t* base, uint64_t size) : base_(base), size_(size) {}

  // Null when the request does not fit. `align` must be a power of two.
  uint8_t* Allocate(uint64_t bytes, uint64_t align = 16) {
    const uint64_t start = (used_ + align - 1) & ~(align - 1);
    if (start < used_ || start > size_ || bytes > size_ - start) return nullptr;
    used_ = start + bytes;
    return base_ + start;
  }
  template <class T>
  T* New() {
    void* p = Allocate(sizeof(T), alignof(T));
    return p == nullptr ? nullptr : new (p) T();
  }

  uint64_t used() const { return used_; }
  // Frees everything allocated since `mark` (an earlier used()): scratch for one call.
  void Rewind(uint64_t mark) {
    if (mark < used_) used_ = mark;
  }
  uint64_t remaining() const { return size_ - used_; }
  void Reset() { used_ = 0; }

 private:
  uint8_t* base_;
  uint64_t size_;
  uint64_t used_ = 0;
};

}  // namespace instar::base

// Placement new without <new> (unavailable freestanding).
#if defined(INSTAR_FREESTANDING)
inline void* operator new(decltype(sizeof(0)), void* p) noexcept { return p; }
#else
#include <new>
#endif
