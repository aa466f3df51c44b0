// The LUKS1 partition header ("LUKS On-Disk Format Specification" 1.2.3, section 2.4), as a
// qcow2 image embeds it for encrypt.format=luks. Only parsed for reporting: no key material is
// ever touched. Pure and freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::luks {

inline constexpr uint32_t kHeaderBytes = 592;
inline constexpr uint32_t kKeySlots = 8;
inline constexpr uint32_t kSlotActive = 0x00AC71F3;
inline constexpr uint32_t kSlotInactive = 0x0000DEAD;

enum class HeaderError {
  kTruncated,
  kBadMagic,
  kUnsupportedVersion,  // detail: version
  kBadSlot,             // a slot that is neither active nor inactive; detail: index
};

struct KeySlot {
  bool active = false;
  uint32_t iterations = 0;
  uint32_t key_material_offset = 0;  // sectors
  uint32_t stripes = 0;
};

struct Header {
  char cipher_name[32] = {};  // NUL-padded as on disk (not necessarily terminated)
  char cipher_mode[32] = {};
  char hash_spec[32] = {};
  char uuid[40] = {};
  uint32_t payload_offset = 0;  // sectors
  uint32_t key_bytes = 0;
  uint32_t master_key_iterations = 0;
  KeySlot slots[kKeySlots];
};

base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes);

}  // namespace instar::luks
