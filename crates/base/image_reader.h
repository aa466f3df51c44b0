// ImageReader: how a pure planner or reader reaches an image file, as a plain function pointer
// (no virtual calls: freestanding code has no C++ runtime). The guest passes call-table I/O,
// host tests and tools pass a file or a buffer. Header-only, freestanding; no allocation.
#pragma once

#include <stdint.h>

namespace instar::base {

// Reads image bytes; false on an I/O error or a range past the end of the file.
struct ImageReader {
  void* context = nullptr;
  bool (*read)(void* context, uint64_t offset, uint64_t length, uint8_t* out) = nullptr;
  uint64_t size = 0;  // file size in bytes

  bool Read(uint64_t offset, uint64_t length, uint8_t* out) const {
    return read(context, offset, length, out);
  }
};

}  // namespace instar::base
