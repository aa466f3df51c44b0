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
inline constexpr uint64_t kMaxBitmapDirectoryBytes = 65535u * 1024;
inline constexpr uint32_t kBitmapEntryFixedBytes = 24;
inline constexpr uint32_t kMaxBitmapNameBytes = 1023;
// Directory entry flag bits.
inline constexpr uint32_t kBitmapInUse = 1u << 0;
inline constexpr uint32_t kBitmapAuto = 1u << 1;
inline constexpr uint32_t kBitmapExtraDataCompatible = 1u << 2;
// Autoclear bit that says the bitmaps extension is consistent.
inline constexpr uint64_t kAutoclearBitmaps = 1u << 0;

// In the order qemu checks them.
enum class BitmapError {
  kLength,              // the extension is not kBitmapsExtensionBytes long
  kReserved,            // its reserved field is not zero
  kEmpty,               // it counts no bitmaps
  kTooMany,             // detail: count
  kDirectoryOffset,     // the directory is not cluster aligned
  kDirectoryTooLarge,   // detail: bytes
  kBroken,              // an entry runs past the directory
};

inline constexpr uint8_t kBitmapTypeDirty = 1;
inline constexpr uint32_t kMinGranularityBits = 9;
inline constexpr uint32_t kMaxGranularityBits = 31;

struct BitmapsExtension {
  uint32_t count = 0;
  uint64_t directory_size = 0;
  uint64_t directory_offset = 0;
};

struct BitmapEntry {
  uint64_t table_offset = 0;
  uint32_t table_size = 0;  // entries
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

// Parses the directory entry at `offset` of `directory`; kBroken when it does not fit.
base::Result<BitmapEntry, BitmapError> ParseBitmapEntry(base::ByteView directory,
                                                        uint64_t offset);

// qemu's constraints on an entry it would load: type, granularity, flags, table placement.
bool SatisfiesConstraints(const BitmapEntry& entry, uint64_t cluster_size);

}  // namespace instar::qcow2
