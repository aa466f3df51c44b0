// The VMDK text descriptor (a file of its own, or embedded in a sparse extent): header keys
// and the extent list, read the way qemu reads them (its key search and its per-line extent
// scan), so the same text yields the same extents and the same refusals. Values are byte
// ranges into the descriptor text. Pure and freestanding; bounded by the text size; no
// allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::vmdk {

inline constexpr uint32_t kMaxExtents = 64;
// qemu reads at most this much of a descriptor file (and stops at the first NUL).
inline constexpr uint64_t kMaxDescriptorBytes = (1u << 20) - 1;
// qemu's field widths in its extent line scan.
inline constexpr uint32_t kMaxAccessBytes = 10;
inline constexpr uint32_t kMaxTypeBytes = 10;
inline constexpr uint32_t kMaxExtentNameBytes = 511;

enum class DescriptorError {
  kBadExtentLine,   // an RW line qemu calls invalid; the error's `line` is the line's text
  kTooManyExtents,
};

enum class ExtentType { kSparse, kFlat, kVmfs, kVmfsSparse, kSeSparse };

struct TextRange {
  uint32_t offset = 0;
  uint32_t length = 0;
  bool present() const { return length != 0; }
};

struct Extent {
  uint64_t sectors = 0;
  ExtentType type = ExtentType::kFlat;
  TextRange type_name;
  TextRange filename;           // without quotes
  uint64_t offset_sectors = 0;  // flat extents
};

// The header keys as qemu reads them: each is the first occurrence of its name anywhere in the
// text (qemu searches with strstr), and a key qemu cannot read fails the open with EINVAL.
struct DescriptorKeys {
  uint32_t cid = 0xFFFFFFFF;
  uint32_t parent_cid = 0xFFFFFFFF;
  bool cids_readable = false;        // both CID and parentCID found, with hex digits
  bool hint_unterminated = false;    // parentFileNameHint without its closing quote
  TextRange parent_file_name_hint;
  TextRange create_type;             // empty when absent or unterminated
};

// Reads the keys of `text` (a C string: it ends at its first NUL) the way qemu does.
DescriptorKeys ReadDescriptorKeys(base::ByteView text);

struct Descriptor {
  DescriptorKeys keys;
  uint32_t extent_count = 0;
  Extent extents[kMaxExtents];
  TextRange bad_line;  // for kBadExtentLine: the line, without its newline

  // Sum of the extents' sizes as the descriptor states them, in bytes (saturates instead of
  // overflowing).
  uint64_t StatedSizeBytes() const;
};

// The create types qemu opens as a descriptor file (whose extents are other files); `type` is
// the value of createType.
bool IsDescriptorFileType(base::ByteView type);

// qemu's probe for a text descriptor: after comment lines and lines of blanks, the first line
// is "version=1", "=2" or "=3".
bool LooksLikeDescriptor(base::ByteView bytes);

// `text` is at most kMaxDescriptorBytes (the caller reads no more). `out` is filled in place:
// Descriptor is large and the guest keeps it out of the stack.
base::Status<DescriptorError> ParseDescriptor(base::ByteView text, Descriptor* out);

}  // namespace instar::vmdk
