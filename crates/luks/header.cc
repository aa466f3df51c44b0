#include "crates/luks/header.h"

namespace instar::luks {
namespace {

using base::Fail;

constexpr uint8_t kMagic[6] = {'L', 'U', 'K', 'S', 0xBA, 0xBE};
constexpr uint32_t kSlotsOffset = 208;
constexpr uint32_t kSlotBytes = 48;
constexpr uint32_t kSector = 512;

void CopyField(base::ByteView bytes, uint64_t offset, char* out, uint32_t size) {
  for (uint32_t i = 0; i < size; ++i) out[i] = static_cast<char>(bytes.data()[offset + i]);
}

// A bounded view of a NUL-padded field (or of part of one).
struct Text {
  const char* data;
  uint32_t size;

  bool Is(const char* word) const {
    uint32_t i = 0;
    for (; word[i] != '\0'; ++i) {
      if (i >= size || data[i] != word[i]) return false;
    }
    return i == size;
  }
  bool IsOneOf(const char* const* words, uint32_t count) const {
    for (uint32_t i = 0; i < count; ++i) {
      if (Is(words[i])) return true;
    }
    return false;
  }
  // The part before the first `c`, and the part after it (empty when there is none).
  bool Split(char c, Text* before, Text* after) const {
    for (uint32_t i = 0; i < size; ++i) {
      if (data[i] == c) {
        *before = {data, i};
        *after = {data + i + 1, size - i - 1};
        return true;
      }
    }
    return false;
  }
};

Text Field(const char* field, uint32_t width) {
  uint32_t n = 0;
  while (n < width && field[n] != '\0') ++n;
  return {field, n};
}

constexpr const char* kModes[] = {"ecb", "cbc", "xts", "ctr"};
constexpr const char* kIvgens[] = {"plain", "plain64", "essiv"};
constexpr const char* kHashes[] = {"md5",    "sha1",   "sha224",    "sha256",
                                   "sha384", "sha512", "ripemd160", "sm3"};

bool CipherKnown(Text name, uint32_t key_bytes) {
  if (name.Is("aes") || name.Is("serpent") || name.Is("twofish")) {
    return key_bytes == 16 || key_bytes == 24 || key_bytes == 32;
  }
  if (name.Is("cast5") || name.Is("sm4")) return key_bytes == 16;
  return false;
}

// Sectors of split key material one slot holds.
uint64_t SlotSectors(const Header& h, const KeySlot& s) {
  const uint64_t bytes = uint64_t{h.key_bytes} * s.stripes;
  return bytes / kSector + (bytes % kSector != 0 ? 1 : 0);
}

}  // namespace

base::Result<Header, HeaderError> ParseHeader(base::ByteView bytes) {
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
    bytes.Be32(at, &h.slots[i].state);
    bytes.Be32(at + 4, &h.slots[i].iterations);
    bytes.Be32(at + 40, &h.slots[i].key_material_offset);
    bytes.Be32(at + 44, &h.slots[i].stripes);
  }
  return h;
}

base::Status<CheckError> CheckHeader(const Header& h) {
  if (h.payload_offset < kHeaderSectors) return Fail(CheckError::kPayloadOverlapsHeader);
  for (uint32_t i = 0; i < kKeySlots; ++i) {
    const KeySlot& a = h.slots[i];
    if (a.state != kSlotActive && a.state != kSlotInactive) return Fail(CheckError::kSlotState, i);
    if (a.stripes != kStripes) return Fail(CheckError::kSlotStripes, i);
    if (a.key_material_offset < kHeaderSectors) return Fail(CheckError::kSlotOverlapsHeader, i);
    for (uint32_t j = i + 1; j < kKeySlots; ++j) {
      const KeySlot& b = h.slots[j];
      const uint64_t a_start = a.key_material_offset, b_start = b.key_material_offset;
      if (a_start < b_start + SlotSectors(h, b) && b_start < a_start + SlotSectors(h, a)) {
        return Fail(CheckError::kSlotsOverlap, uint64_t{i} * kKeySlots + j);
      }
    }
  }
  // cipher_mode is "MODE-IVGEN[:IVHASH]".
  const Text mode_spec = Field(h.cipher_mode, sizeof h.cipher_mode);
  Text mode, ivgen_spec, ivgen, ivhash;
  if (!mode_spec.Split('-', &mode, &ivgen_spec)) return Fail(CheckError::kModeFormat);
  if (!mode.IsOneOf(kModes, 4)) return Fail(CheckError::kMode);
  const bool has_hash = ivgen_spec.Split(':', &ivgen, &ivhash);
  if (!has_hash) ivgen = ivgen_spec;
  if (!ivgen.IsOneOf(kIvgens, 3)) return Fail(CheckError::kIvgen);
  if (has_hash && !ivhash.IsOneOf(kHashes, 8)) return Fail(CheckError::kIvgenHash);
  // XTS keys hold two cipher keys.
  const uint32_t key_bytes = mode.Is("xts") ? h.key_bytes / 2 : h.key_bytes;
  if (!CipherKnown(Field(h.cipher_name, sizeof h.cipher_name), key_bytes)) {
    return Fail(CheckError::kCipher);
  }
  if (!Field(h.hash_spec, sizeof h.hash_spec).IsOneOf(kHashes, 8)) return Fail(CheckError::kHash);
  return {};
}

}  // namespace instar::luks
