// The qcow2 bitmaps extension and bitmap directory (QEMU's qcow2 specification, "Bitmaps
// extension" and "Bitmap directory"). Pure and freestanding; no allocation; names are byte
// ranges into the caller's buffer.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::qcow2 {

inline constexpr uint32_t kBitmapsExtensionBytes = 24;
inline constexpr uint32_t kMaxBitmaps = 65535;
inline constexpr uint64_t kMaxBitmapDirectoryBytes = 64u << 20;
inline constexpr uint32_t kBitmapEntryFixedBytes = 24;
inline constexpr uint32_t kMaxBitmapNameBytes = 1023;
// Directory entry flag bits.
inline constexpr uint32_t kBitmapInUse = 1u << 0;
inline constexpr uint32_t kBitmapAuto = 1u << 1;
inline constexpr uint32_t kBitmapExtraDataCompatible = 1u << 2;
// Autoclear bit that says the bitmaps extension is consistent.
inline constexpr uint64_t kAutoclearBitmaps = 1u << 0;

enum class BitmapError {
  kBadExtension,   // the extension's size or fields are invalid
  kBadDirectory,   // an entry is malformed or runs past the directory
};

struct BitmapsExtension {
  uint32_t count = 0;
  uint64_t directory_size = 0;
  uint64_t directory_offset = 0;
};

struct BitmapEntry {
  uint32_t flags = 0;
  uint8_t type = 0;
  uint8_t granularity_bits = 0;
  uint64_t name_offset = 0;  // into the directory bytes
  uint32_t name_length = 0;
  uint64_t entry_size = 0;   // padding included
};

// `data` is the extension's payload; `cluster_size` bounds the directory's alignment.
base::Result<BitmapsExtension, BitmapError> ParseBitmapsExtension(base::ByteView data,
                                                                  uint64_t cluster_size);

// Parses the directory entry at `offset` of `directory`.
base::Result<BitmapEntry, BitmapError> ParseBitmapEntry(base::ByteView directory,
                                                        uint64_t offset);

}  // namespace instar::qcow2
