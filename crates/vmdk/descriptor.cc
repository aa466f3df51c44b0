#include "crates/vmdk/descriptor.h"

#include "crates/base/checked.h"

namespace instar::vmdk {
namespace {

constexpr char kSignature[] = "# Disk DescriptorFile";

struct Cursor {
  const uint8_t* text;
  uint32_t pos;
  uint32_t end;  // end of the current line
};

bool IsSpace(uint8_t c) { return c == ' ' || c == '\t' || c == '\r'; }

bool Equals(base::ByteView text, TextRange r, const char* word) {
  uint32_t i = 0;
  for (; word[i] != '\0'; ++i) {
    if (i >= r.length || text.data()[r.offset + i] != static_cast<uint8_t>(word[i])) return false;
  }
  return i == r.length;
}

// Next whitespace-separated token on the line; quoted tokens lose their quotes.
bool NextToken(Cursor& c, TextRange* token) {
  while (c.pos < c.end && IsSpace(c.text[c.pos])) ++c.pos;
  if (c.pos >= c.end) return false;
  if (c.text[c.pos] == '"') {
    const uint32_t start = ++c.pos;
    while (c.pos < c.end && c.text[c.pos] != '"') ++c.pos;
    if (c.pos >= c.end) return false;
    *token = {start, c.pos - start};
    ++c.pos;
    return true;
  }
  const uint32_t start = c.pos;
  while (c.pos < c.end && !IsSpace(c.text[c.pos])) ++c.pos;
  *token = {start, c.pos - start};
  return true;
}

bool ParseUnsigned(base::ByteView text, TextRange r, uint32_t base_, uint64_t* out) {
  if (r.length == 0 || r.length > 20) return false;
  uint64_t v = 0;
  for (uint32_t i = 0; i < r.length; ++i) {
    const uint8_t ch = text.data()[r.offset + i];
    uint32_t digit;
    if (ch >= '0' && ch <= '9') digit = ch - '0';
    else if (base_ == 16 && ch >= 'a' && ch <= 'f') digit = ch - 'a' + 10;
    else if (base_ == 16 && ch >= 'A' && ch <= 'F') digit = ch - 'A' + 10;
    else return false;
    if (!base::CheckedMul(v, base_, &v) || !base::CheckedAdd(v, digit, &v)) return false;
  }
  *out = v;
  return true;
}

// A `key = value` line; the value keeps its quotes stripped.
bool KeyValue(Cursor c, TextRange* key, TextRange* value) {
  while (c.pos < c.end && IsSpace(c.text[c.pos])) ++c.pos;
  const uint32_t key_start = c.pos;
  while (c.pos < c.end && c.text[c.pos] != '=' && !IsSpace(c.text[c.pos])) ++c.pos;
  *key = {key_start, c.pos - key_start};
  while (c.pos < c.end && IsSpace(c.text[c.pos])) ++c.pos;
  if (c.pos >= c.end || c.text[c.pos] != '=') return false;
  ++c.pos;
  while (c.pos < c.end && IsSpace(c.text[c.pos])) ++c.pos;
  uint32_t vend = c.end;
  while (vend > c.pos && IsSpace(c.text[vend - 1])) --vend;
  if (vend > c.pos + 1 && c.text[c.pos] == '"' && c.text[vend - 1] == '"') {
    *value = {c.pos + 1, vend - c.pos - 2};
  } else {
    *value = {c.pos, vend - c.pos};
  }
  return key->length != 0;
}

ExtentType TypeOf(base::ByteView text, TextRange r) {
  if (Equals(text, r, "SPARSE")) return ExtentType::kSparse;
  if (Equals(text, r, "FLAT")) return ExtentType::kFlat;
  if (Equals(text, r, "ZERO")) return ExtentType::kZero;
  if (Equals(text, r, "VMFS")) return ExtentType::kVmfs;
  if (Equals(text, r, "VMFSSPARSE")) return ExtentType::kVmfsSparse;
  return ExtentType::kOther;
}

}  // namespace

uint64_t Descriptor::VirtualSizeBytes() const {
  uint64_t total = 0;
  for (uint32_t i = 0; i < extent_count; ++i) {
    uint64_t bytes = 0;
    if (!base::CheckedMul(extents[i].sectors, 512, &bytes) ||
        !base::CheckedAdd(total, bytes, &total)) {
      return UINT64_MAX;
    }
  }
  return total;
}

bool LooksLikeDescriptor(base::ByteView bytes) {
  const uint64_t n = sizeof(kSignature) - 1;
  if (!bytes.Has(0, n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    if (bytes.data()[i] != static_cast<uint8_t>(kSignature[i])) return false;
  }
  return true;
}

base::Status<DescriptorError> ParseDescriptor(base::ByteView text, Descriptor* out) {
  *out = Descriptor{};
  if (text.size() > kMaxDescriptorBytes) return base::Fail(DescriptorError::kTooLarge);
  if (!LooksLikeDescriptor(text)) return base::Fail(DescriptorError::kNotDescriptor);
  // An embedded descriptor is NUL-padded to its sector count; stop at the first NUL.
  uint32_t size = 0;
  while (size < text.size() && text.data()[size] != 0) ++size;

  uint32_t line_number = 0;
  for (uint32_t pos = 0; pos < size;) {
    uint32_t end = pos;
    while (end < size && text.data()[end] != '\n') ++end;
    ++line_number;
    Cursor c{text.data(), pos, end};
    pos = end + 1;
    while (c.pos < c.end && IsSpace(c.text[c.pos])) ++c.pos;
    if (c.pos >= c.end || c.text[c.pos] == '#') continue;

    TextRange first;
    Cursor probe = c;
    NextToken(probe, &first);
    if (Equals(text, first, "RW") || Equals(text, first, "RDONLY") ||
        Equals(text, first, "NOACCESS")) {
      if (out->extent_count >= kMaxExtents) return base::Fail(DescriptorError::kTooManyExtents);
      Extent& e = out->extents[out->extent_count];
      TextRange sectors;
      e.access = first;
      if (!NextToken(probe, &sectors) || !ParseUnsigned(text, sectors, 10, &e.sectors) ||
          !NextToken(probe, &e.type_name)) {
        return base::Fail(DescriptorError::kBadExtentLine, line_number);
      }
      e.type = TypeOf(text, e.type_name);
      if (e.type != ExtentType::kZero) {
        if (!NextToken(probe, &e.filename)) {
          return base::Fail(DescriptorError::kBadExtentLine, line_number);
        }
        TextRange offset;
        if (NextToken(probe, &offset) && !ParseUnsigned(text, offset, 10, &e.offset_sectors)) {
          return base::Fail(DescriptorError::kBadExtentLine, line_number);
        }
      }
      ++out->extent_count;
      continue;
    }

    TextRange key, value;
    if (!KeyValue(c, &key, &value)) continue;
    uint64_t number = 0;
    if (Equals(text, key, "CID")) {
      if (!ParseUnsigned(text, value, 16, &number) || number > 0xFFFFFFFFu) {
        return base::Fail(DescriptorError::kBadNumber, line_number);
      }
      out->cid = static_cast<uint32_t>(number);
      out->has_cid = true;
    } else if (Equals(text, key, "parentCID")) {
      if (!ParseUnsigned(text, value, 16, &number) || number > 0xFFFFFFFFu) {
        return base::Fail(DescriptorError::kBadNumber, line_number);
      }
      out->parent_cid = static_cast<uint32_t>(number);
      out->has_parent_cid = true;
    } else if (Equals(text, key, "createType")) {
      out->create_type = value;
    } else if (Equals(text, key, "parentFileNameHint")) {
      out->parent_file_name_hint = value;
    }
  }
  return {};
}

}  // namespace instar::vmdk
