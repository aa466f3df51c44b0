// Fuzz target: Inflate on arbitrary bytes, both wrappers and both stopping rules. Invariant:
// it never writes past its capacity, and success accounts only for bytes it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "crates/chain_read/inflate.h"

using instar::chain_read::Inflate;
using instar::chain_read::InflateUntil;
using instar::chain_read::InflateWrapper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kCapacity = 1u << 16;
  static uint8_t out[kCapacity + 16];
  for (InflateWrapper wrapper : {InflateWrapper::kRaw, InflateWrapper::kZlib}) {
    for (InflateUntil until : {InflateUntil::kStreamEnd, InflateUntil::kOutputFull}) {
      memset(out + kCapacity, 0xA5, 16);
      auto r = Inflate(instar::base::ByteView(data, size), wrapper, until, out, kCapacity);
      for (int i = 0; i < 16; ++i) {
        if (out[kCapacity + i] != 0xA5) std::abort();
      }
      if (r.ok() && (r.value().written > kCapacity || r.value().consumed > size)) std::abort();
      if (r.ok() && until == InflateUntil::kOutputFull && r.value().written != kCapacity) {
        std::abort();
      }
    }
  }
  return 0;
}
