// TextWriter: appends bytes and decimal or hex numbers to a caller-given buffer, counting what
// does not fit instead of writing it, so a caller writes everything and asks once whether it
// fitted. Header-only, freestanding; no allocation.
#pragma once

#include <stdint.h>

namespace instar::base {

class TextWriter {
 public:
  TextWriter(uint8_t* out, uint64_t capacity) : out_(out), capacity_(capacity) {}
  void Put(const uint8_t* p, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) Byte(p[i]);
  }
  void Put(const char* text) {
    for (; *text != '\0'; ++text) Byte(static_cast<uint8_t>(*text));
  }
  void Byte(uint8_t c) {
    if (used_ < capacity_) out_[used_] = c;
    ++used_;
  }
  void Number(uint64_t v) {
    char digits[20];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) Byte(static_cast<uint8_t>(digits[--n]));
  }
  // Lower-case hex without leading zeros, as qemu prints a VMDK CID ("%" PRIx32).
  void Hex(uint64_t v) {
    char digits[16];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v & 0xF];
      v >>= 4;
    } while (v != 0);
    while (n > 0) Byte(static_cast<uint8_t>(digits[--n]));
  }
  bool Fits() const { return used_ <= capacity_; }
  uint64_t used() const { return used_; }
  // Zero-fills the rest of the buffer.
  void Pad() {
    for (uint64_t i = used_; i < capacity_; ++i) out_[i] = 0;
  }

 private:
  uint8_t* out_;
  uint64_t capacity_;
  uint64_t used_ = 0;
};

// True when p[0, n) begins with `prefix`.
inline bool StartsWith(const uint8_t* p, uint64_t n, const char* prefix) {
  uint64_t i = 0;
  for (; prefix[i] != '\0'; ++i) {
    if (i >= n || p[i] != static_cast<uint8_t>(prefix[i])) return false;
  }
  return true;
}

}  // namespace instar::base
