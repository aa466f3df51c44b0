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
inline constexpr uint16_t kCompressionDeflate = 1;  // compress_algorithm of streamOptimized

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
  kFooterUnreadable,    // the header defers to a footer the file is too short to hold
  kInvalidFooter,       // the footer's markers or magic are wrong
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
// A header that defers to a footer (DefersToFooter) is parsed as it stands; ReadSparseHeader
// follows it to the footer.
base::Result<SparseHeader, SparseHeaderError> ParseSparseHeader(base::ByteView bytes,
                                                                uint64_t file_bytes);

// qemu reads a sparse header with no capacity but a descriptor offset as a descriptor file
// (whose extents are other files) starting at that offset, before it validates anything else:
// that offset in bytes, or 0 for an ordinary sparse header.
uint64_t EmbeddedDescriptorFileOffset(base::ByteView head);

// VMware's streamOptimized extents may write the grain directory last: their header's
// gd_offset is kGdAtEnd, and the header that counts is the copy in the footer, the middle of
// the three sectors before the end of the file (a footer marker, the header, an end-of-stream
// marker). qemu reads it unless the header instead marks an embedded descriptor file
// (capacity 0 with a descriptor offset).
inline constexpr uint64_t kFooterBytes = 1536;
bool DefersToFooter(base::ByteView head);
// The header in `footer` (kFooterBytes read where ReadSparseHeader reads them), once the
// markers around it are what qemu expects.
base::Result<SparseHeader, SparseHeaderError> ParseFooter(base::ByteView footer,
                                                          uint64_t file_bytes);

// The header that describes the extent: `head`'s, or its footer's, read through
// `read(offset, length, out)` (a bool-returning callable). The footer buffer is on the stack.
template <class Read>
base::Result<SparseHeader, SparseHeaderError> ReadSparseHeader(base::ByteView head,
                                                               uint64_t file_bytes, Read&& read) {
  if (!DefersToFooter(head)) return ParseSparseHeader(head, file_bytes);
  // qemu reads relative to the file's size in whole sectors.
  const uint64_t end = (file_bytes + 511) / 512 * 512;
  uint8_t footer[kFooterBytes];
  if (end < kFooterBytes || !read(end - kFooterBytes, kFooterBytes, footer)) {
    return base::Fail(SparseHeaderError::kFooterUnreadable);
  }
  return ParseFooter(base::ByteView(footer, kFooterBytes), file_bytes);
}

}  // namespace instar::vmdk
