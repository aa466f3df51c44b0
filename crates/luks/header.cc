#include "crates/luks/header.h"

namespace instar::luks {
namespace {

constexpr uint8_t kMagic[6] = {'L', 'U', 'K', 'S', 0xBA, 0xBE};
constexpr uint32_t kSlotsOffset = 208;
constexpr uint32_t kSlotBytes = 48;

void CopyField(base::ByteView bytes, uint64_t offset, char* out, uint32_t size) {
  for (uint32_t i = 0; i < size; ++i) out[i] = static_cast<char>(bytes.data()[offset + i]);
}

}  // namespace

base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes) {
  using base::Fail;
  if (!bytes.Has(0, kHeaderBytes)) return Fail(HeaderError::kTruncated);
  for (uint32_t i = 0; i < sizeof kMagic; ++i) {
    if (bytes.data()[i] != kMagic[i]) return Fail(HeaderError::kBadMagic);
  }
  uint16_t version = 0;
  bytes.Be16(6, &version);
  if (version != 1) return Fail(HeaderError::kUnsupportedVersion, version);
  Header h;
  CopyField(bytes, 8, h.cipher_name, sizeof h.cipher_name);
  CopyField(bytes, 40, h.cipher_mode, sizeof h.cipher_mode);
  CopyField(bytes, 72, h.hash_spec, sizeof h.hash_spec);
  bytes.Be32(104, &h.payload_offset);
  bytes.Be32(108, &h.key_bytes);
  bytes.Be32(164, &h.master_key_iterations);
  CopyField(bytes, 168, h.uuid, sizeof h.uuid);
  for (uint32_t i = 0; i < kKeySlots; ++i) {
    const uint64_t at = kSlotsOffset + uint64_t{i} * kSlotBytes;
    uint32_t state = 0;
    bytes.Be32(at, &state);
    if (state != kSlotActive && state != kSlotInactive) return Fail(HeaderError::kBadSlot, i);
    h.slots[i].active = state == kSlotActive;
    bytes.Be32(at + 4, &h.slots[i].iterations);
    bytes.Be32(at + 40, &h.slots[i].key_material_offset);
    bytes.Be32(at + 44, &h.slots[i].stripes);
  }
  return h;
}

}  // namespace instar::luks
