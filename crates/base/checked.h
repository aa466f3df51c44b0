// Checked arithmetic for offsets and sizes derived from image bytes: every multiplication and
// addition that could overflow goes through these. Header-only, freestanding; no allocation.
#pragma once

#include <stdint.h>

namespace instar::base {

// Each returns false (leaving *out untouched) when the result does not fit in 64 bits.
// (The builtins store the wrapped result even on overflow, hence the temporaries.)
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}
inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}
inline bool CheckedShl(uint64_t a, uint32_t shift, uint64_t* out) {
  if (shift >= 64) return a == 0 ? (*out = 0, true) : false;
  if (a > (UINT64_MAX >> shift)) return false;
  *out = a << shift;
  return true;
}
// Round `v` up to a multiple of the power of two `align`.
inline bool CheckedAlignUp(uint64_t v, uint64_t align, uint64_t* out) {
  uint64_t t;
  if (!CheckedAdd(v, align - 1, &t)) return false;
  *out = t & ~(align - 1);
  return true;
}
inline uint64_t DivRoundUp(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
inline bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace instar::base
