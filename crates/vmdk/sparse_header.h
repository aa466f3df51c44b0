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
inline constexpr uint32_t kFlagRedundantGrainTable = 1u << 1;
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
  kFileTruncated,       // the file ends before the first grain; detail: qemu's byte count
  kBadGrainSize,        // detail: grain size in sectors
  kL1TooBig,            // the grain directory has more than kMaxL1Entries entries
  kL1Unreadable,        // the grain directory lies beyond the largest readable offset
  kL1BackupUnreadable,  // so does the redundant one
};

// The block layer's largest image (INT64_MAX aligned down to 1 GiB).
inline constexpr uint64_t kMaxImageBytes = 0x7FFFFFFFC0000000ull;

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

// `file_bytes` is the size of the file the header starts (qemu checks the first grain is in it).
base::Result<SparseHeader, SparseHeaderError> ParseSparseHeader(base::ByteView bytes,
                                                                uint64_t file_bytes);

}  // namespace instar::vmdk
