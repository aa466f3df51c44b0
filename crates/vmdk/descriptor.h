// The VMDK text descriptor (embedded in a sparse extent or a file of its own): header keys,
// the extent list and the disk database. Values are returned as byte ranges into the
// descriptor text. Pure and freestanding; bounded by the text size; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::vmdk {

inline constexpr uint32_t kMaxExtents = 64;
inline constexpr uint64_t kMaxDescriptorBytes = 64 * 1024;

enum class DescriptorError {
  kNotDescriptor,   // no "# Disk DescriptorFile" signature line
  kTooLarge,        // over kMaxDescriptorBytes
  kBadExtentLine,   // an extent line that does not parse; detail: line number
  kTooManyExtents,
  kBadNumber,       // detail: line number
};

enum class ExtentType { kSparse, kFlat, kZero, kVmfs, kVmfsSparse, kOther };

struct TextRange {
  uint32_t offset = 0;
  uint32_t length = 0;
  bool present() const { return length != 0; }
};

struct Extent {
  TextRange access;       // RW, RDONLY, NOACCESS
  uint64_t sectors = 0;
  ExtentType type = ExtentType::kOther;
  TextRange type_name;
  TextRange filename;     // without quotes
  uint64_t offset_sectors = 0;  // flat extents
};

struct Descriptor {
  uint32_t cid = 0xFFFFFFFF;
  uint32_t parent_cid = 0xFFFFFFFF;
  bool has_cid = false;
  bool has_parent_cid = false;
  TextRange create_type;
  TextRange parent_file_name_hint;
  uint32_t extent_count = 0;
  Extent extents[kMaxExtents];

  // Sum of the extents' sizes in bytes (saturates instead of overflowing).
  uint64_t VirtualSizeBytes() const;
};

// True when `bytes` starts like a text descriptor (the probe qemu uses).
bool LooksLikeDescriptor(base::ByteView bytes);

// `out` is filled in place: Descriptor is large and the guest keeps it out of the stack.
base::Status<DescriptorError> ParseDescriptor(base::ByteView text, Descriptor* out);

}  // namespace instar::vmdk
