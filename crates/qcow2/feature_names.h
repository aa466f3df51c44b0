// The qcow2 feature name table extension (QEMU's qcow2 specification, "Feature name table"):
// 48-byte entries of (type, bit, name). Pure and freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"

namespace instar::qcow2 {

inline constexpr uint32_t kFeatureNameEntryBytes = 48;
inline constexpr uint32_t kFeatureNameBytes = 46;

struct FeatureName {
  uint8_t type = 0;  // 0 incompatible, 1 compatible, 2 autoclear
  uint8_t bit = 0;
  uint64_t name_offset = 0;  // into the table bytes
  uint32_t name_length = 0;  // up to the first NUL, at most kFeatureNameBytes
};

// Number of whole entries in `table`.
inline uint64_t FeatureNameCount(base::ByteView table) {
  return table.size() / kFeatureNameEntryBytes;
}

// Entry `index` (< FeatureNameCount).
FeatureName FeatureNameAt(base::ByteView table, uint64_t index);

}  // namespace instar::qcow2
