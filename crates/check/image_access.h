// ImageAccess: how the check planner reaches the image file, as plain function pointers (the
// guest passes call-table I/O, host tests pass an in-memory file). Reads past the end of the
// file return zeros, as qemu's file driver does; writes may extend the file. Header-only,
// freestanding; no allocation.
#pragma once

#include <stdint.h>

namespace instar::check {

// qemu's block layer refuses any request ending past this (INT64_MAX rounded down to its
// largest alignment) with EIO, whatever the file holds.
inline constexpr uint64_t kBlockLayerMaxLength = 0x7FFFFFFFC0000000ull;

struct ImageAccess {
  void* context = nullptr;
  // False on an I/O error.
  bool (*read)(void* context, uint64_t offset, uint64_t length, uint8_t* out) = nullptr;
  bool (*write)(void* context, uint64_t offset, uint64_t length, const uint8_t* in) = nullptr;
  uint64_t (*size)(void* context) = nullptr;  // current file size in bytes
  // Makes the writes so far durable; may be null (in-memory images).
  bool (*flush)(void* context) = nullptr;

  bool Read(uint64_t offset, uint64_t length, uint8_t* out) const {
    if (offset > kBlockLayerMaxLength || length > kBlockLayerMaxLength - offset) return false;
    return read(context, offset, length, out);
  }
  bool Write(uint64_t offset, uint64_t length, const uint8_t* in) const {
    return write != nullptr && write(context, offset, length, in);
  }
  bool Flush() const { return flush == nullptr || flush(context); }
  uint64_t Size() const { return size(context); }
};

}  // namespace instar::check
