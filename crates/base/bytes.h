// ByteView: a bounds-checked read-only view over bytes read from an image. Reads past the end
// fail instead of touching memory. Header-only, freestanding; no allocation.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "crates/base/endian.h"

namespace instar::base {

class ByteView {
 public:
  constexpr ByteView() = default;
  constexpr ByteView(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  bool Has(uint64_t offset, uint64_t len) const {
    return offset <= size_ && len <= size_ - offset;
  }
  // Sub-view; empty when out of range.
  ByteView Sub(uint64_t offset, uint64_t len) const {
    return Has(offset, len) ? ByteView(data_ + offset, len) : ByteView();
  }
  // Each returns false when the field lies past the end.
  bool Be16(uint64_t off, uint16_t* v) const { return Has(off, 2) && (*v = LoadBe16(data_ + off), true); }
  bool Be32(uint64_t off, uint32_t* v) const { return Has(off, 4) && (*v = LoadBe32(data_ + off), true); }
  bool Be64(uint64_t off, uint64_t* v) const { return Has(off, 8) && (*v = LoadBe64(data_ + off), true); }
  bool Le16(uint64_t off, uint16_t* v) const { return Has(off, 2) && (*v = LoadLe16(data_ + off), true); }
  bool Le32(uint64_t off, uint32_t* v) const { return Has(off, 4) && (*v = LoadLe32(data_ + off), true); }
  bool Le64(uint64_t off, uint64_t* v) const { return Has(off, 8) && (*v = LoadLe64(data_ + off), true); }

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Word-wise byte comparisons: the guest has no SIMD, and a byte loop would dominate comparing
// a gigabyte or a whole refcount window.
inline uint64_t LoadWord(const uint8_t* p) {
  uint64_t v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline bool BytesEqual(const uint8_t* a, const uint8_t* b, uint64_t n) {
  uint64_t i = 0;
  for (; n - i >= 32; i += 32) {
    const uint64_t diff = (LoadWord(a + i) ^ LoadWord(b + i)) |
                          (LoadWord(a + i + 8) ^ LoadWord(b + i + 8)) |
                          (LoadWord(a + i + 16) ^ LoadWord(b + i + 16)) |
                          (LoadWord(a + i + 24) ^ LoadWord(b + i + 24));
    if (diff != 0) return false;
  }
  for (; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

inline bool AllZero(const uint8_t* p, uint64_t n) {
  uint64_t i = 0;
  for (; n - i >= 32; i += 32) {
    if ((LoadWord(p + i) | LoadWord(p + i + 8) | LoadWord(p + i + 16) | LoadWord(p + i + 24)) != 0) {
      return false;
    }
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace instar::base
