// The LUKS1 partition header ("LUKS On-Disk Format Specification" 1.2.3, section 2.4), as a
// qcow2 image embeds it for encrypt.format=luks. Only parsed for reporting: no key material is
// ever touched. The checks follow qemu's order, so the first failure is the one qemu-img
// reports. Pure and freestanding; no allocation.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::luks {

inline constexpr uint32_t kHeaderBytes = 592;
inline constexpr uint32_t kKeySlots = 8;
inline constexpr uint32_t kSlotActive = 0x00AC71F3;
inline constexpr uint32_t kSlotInactive = 0x0000DEAD;
inline constexpr uint32_t kStripes = 4000;
// Key material and payload start after the first 4 KiB (8 sectors) of the header area.
inline constexpr uint32_t kHeaderSectors = 8;

enum class HeaderError {
  kTruncated,
  kBadMagic,
  kUnsupportedVersion,  // detail: version
};

enum class CheckError {
  kPayloadOverlapsHeader,
  kSlotState,           // detail: slot
  kSlotStripes,         // detail: slot
  kSlotOverlapsHeader,  // detail: slot
  kSlotsOverlap,        // detail: first slot * kKeySlots + second slot
  kModeFormat,          // the cipher mode has no '-' before its IV generator
  kMode,                // unknown cipher mode
  kIvgen,               // unknown IV generator
  kIvgenHash,           // unknown IV generator hash
  kCipher,              // unknown cipher or key size
  kHash,                // unknown hash
};

struct KeySlot {
  uint32_t state = 0;  // kSlotActive, kSlotInactive, or anything else (corrupt)
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

// Reads the header's fields; only the magic and version are judged here.
base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes);

// qemu's consistency checks (payload and key slot layout), then its algorithm names.
base::Status<CheckError> CheckHeader(const Header& h);

}  // namespace instar::luks
