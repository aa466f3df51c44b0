#include "vmm/base/text_format.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>

namespace instar {

std::string Format(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  // clang-analyzer 14 misreads va_start/va_copy'd lists passed to glibc's vsnprintf.
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  const int length = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  std::string out;
  if (length > 0) {
    out.resize(static_cast<size_t>(length) + 1);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    const int written = std::vsnprintf(out.data(), out.size(), format, again);
    out.resize(written > 0 ? static_cast<size_t>(written) : 0);
  }
  va_end(again);
  return out;
}

std::string Hex(uint64_t value) { return Format("0x%" PRIx64, value); }

}  // namespace instar
