// The VMDK hosted sparse extent header (VMware "Virtual Disk Format 1.1", SparseExtentHeader,
// 512 bytes, little-endian). Pure and freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::vmdk {

inline constexpr uint32_t kSparseMagic = 0x564D444B;  // "KDMV"
inline constexpr uint32_t kSparseHeaderSize = 512;
inline constexpr uint64_t kGdAtEnd = 0xFFFFFFFFFFFFFFFFull;
inline constexpr uint32_t kFlagCompressed = 1u << 16;
inline constexpr uint32_t kFlagMarkers = 1u << 17;

// qemu's limits on a sparse extent's tables.
inline constexpr uint32_t kMaxGtesPerGt = 512;
inline constexpr uint64_t kMaxGrainSectors = 0x200000;
inline constexpr uint32_t kMaxL1Entries = 32u << 20;

// In the order qemu checks them, so the first failure is the one qemu-img reports.
enum class SparseHeaderError {
  kNotSparse,           // bad magic
  kTruncated,           // fewer than 80 bytes
  kUnsupportedVersion,  // detail: version
  kBadGrainTableSize,   // more than kMaxGtesPerGt entries per grain table; detail: entries
  kBadL1EntrySize,      // a grain directory entry covers no sectors
  kBadGrainSize,        // detail: grain size in sectors
  kL1TooBig,            // the grain directory has more than kMaxL1Entries entries
};

struct SparseHeader {
  uint32_t version = 0;
  uint32_t flags = 0;
  uint64_t capacity_sectors = 0;
  uint64_t grain_sectors = 0;
  uint64_t descriptor_offset_sectors = 0;
  uint64_t descriptor_size_sectors = 0;
  uint32_t gtes_per_gt = 0;
  uint64_t rgd_offset_sectors = 0;
  uint64_t gd_offset_sectors = 0;
  uint64_t overhead_sectors = 0;
  uint8_t unclean_shutdown = 0;
  uint16_t compress_algorithm = 0;
};

base::Result<SparseHeader, SparseHeaderError> ParseSparseHeader(base::ByteView bytes);

}  // namespace instar::vmdk
