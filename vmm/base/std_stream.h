// Writing text to stdout or stderr. A failure is not reported: the only place to report it is
// a standard stream, which is what failed (qemu-img ignores these failures too); the exit
// code still says how the command ended. Host-only.
#pragma once

#include <cstdio>
#include <string_view>

namespace instar {

inline void Emit(std::FILE* stream, std::string_view text) {
  (void)std::fwrite(text.data(), 1, text.size(), stream);
}

// Emit, then flush: progress lines, and text that must be out before the descriptor changes.
inline void EmitNow(std::FILE* stream, std::string_view text) {
  Emit(stream, text);
  (void)std::fflush(stream);
}

}  // namespace instar
