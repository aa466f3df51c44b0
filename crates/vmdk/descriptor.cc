#include "crates/vmdk/descriptor.h"

#include "crates/base/checked.h"

namespace instar::vmdk {
namespace {

// C's isspace, which qemu's scan uses (it crosses line ends).
bool IsCSpace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool Equals(const uint8_t* text, TextRange r, const char* word) {
  uint32_t i = 0;
  for (; word[i] != '\0'; ++i) {
    if (i >= r.length || text[r.offset + i] != static_cast<uint8_t>(word[i])) return false;
  }
  return i == r.length;
}

// A scanf-like reader over text[pos, size): each step is one of qemu's conversions.
struct Scan {
  const uint8_t* text;
  uint32_t size;
  uint32_t pos;

  void SkipSpace() {
    while (pos < size && IsCSpace(text[pos])) ++pos;
  }
  // "%Ns": blanks, then 1..N non-blank characters.
  bool Word(uint32_t max, TextRange* out) {
    SkipSpace();
    const uint32_t start = pos;
    while (pos < size && pos - start < max && !IsCSpace(text[pos])) ++pos;
    *out = {start, pos - start};
    return pos > start;
  }
  // "%" SCNd64: blanks, a sign, decimal digits; strtoll saturates.
  bool Int64(int64_t* out) {
    SkipSpace();
    bool negative = false;
    if (pos < size && (text[pos] == '+' || text[pos] == '-')) negative = text[pos++] == '-';
    const uint32_t start = pos;
    uint64_t v = 0;
    const uint64_t limit = negative ? 0x8000000000000000ull : 0x7FFFFFFFFFFFFFFFull;
    while (pos < size && text[pos] >= '0' && text[pos] <= '9') {
      const uint64_t digit = text[pos++] - '0';
      v = v > (limit - digit) / 10 ? limit : v * 10 + digit;
    }
    if (pos == start) return false;
    *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
    return true;
  }
  // A literal character after optional blanks (" \"") or right here ("\"").
  bool Char(char c, bool skip_space) {
    if (skip_space) SkipSpace();
    if (pos >= size || text[pos] != static_cast<uint8_t>(c)) return false;
    ++pos;
    return true;
  }
  // "%N[^\n\r\"]": 1..N characters other than those.
  bool Name(uint32_t max, TextRange* out) {
    const uint32_t start = pos;
    while (pos < size && pos - start < max && text[pos] != '\n' && text[pos] != '\r' &&
           text[pos] != '"') {
      ++pos;
    }
    *out = {start, pos - start};
    return pos > start;
  }
};

enum class LineKind { kSkip, kExtent, kInvalid };

// qemu's extent line: sscanf(p, "%10s %" SCNd64 " %10s \"%511[^\n\r\"]\" %" SCNd64) from
// the line's start (the scan may run past its end), then its verdicts on what matched.
LineKind ScanExtentLine(const uint8_t* text, uint32_t size, uint32_t start, Extent* e) {
  Scan s{text, size, start};
  TextRange access;
  int64_t sectors = 0, offset = -1;
  int matches = 0;
  if (s.Word(kMaxAccessBytes, &access)) {
    ++matches;
    if (s.Int64(&sectors)) {
      ++matches;
      if (s.Word(kMaxTypeBytes, &e->type_name)) {
        ++matches;
        if (s.Char('"', true) && s.Name(kMaxExtentNameBytes, &e->filename)) {
          ++matches;
          if (s.Char('"', false) && s.Int64(&offset)) ++matches;
        }
      }
    }
  }
  if (matches < 4 || !Equals(text, access, "RW")) return LineKind::kSkip;
  const TextRange type = e->type_name;
  if (Equals(text, type, "FLAT")) {
    if (matches != 5 || offset < 0) return LineKind::kInvalid;
    e->type = ExtentType::kFlat;
  } else if (Equals(text, type, "VMFS")) {
    if (matches != 4) return LineKind::kInvalid;
    offset = 0;
    e->type = ExtentType::kVmfs;
  } else if (matches != 4) {
    return LineKind::kInvalid;
  } else if (Equals(text, type, "SPARSE")) {
    e->type = ExtentType::kSparse;
  } else if (Equals(text, type, "VMFSSPARSE")) {
    e->type = ExtentType::kVmfsSparse;
  } else if (Equals(text, type, "SESPARSE")) {
    e->type = ExtentType::kSeSparse;
  } else {
    return LineKind::kSkip;
  }
  if (sectors <= 0) return LineKind::kSkip;
  e->sectors = static_cast<uint64_t>(sectors);
  e->offset_sectors = static_cast<uint64_t>(offset);
  return LineKind::kExtent;
}

// strstr over a C string of `size` bytes: the offset of the first `name`, or `size`.
uint32_t Find(const uint8_t* text, uint32_t size, const char* name) {
  uint32_t n = 0;
  while (name[n] != '\0') ++n;
  for (uint32_t i = 0; i + n <= size; ++i) {
    uint32_t j = 0;
    while (j < n && text[i + j] == static_cast<uint8_t>(name[j])) ++j;
    if (j == n) return i;
  }
  return size;
}

int HexDigit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// qemu's CID read: after NAME and one more character, sscanf("%x"): blanks, an optional 0x,
// then hex digits. False when the name or the digits are missing.
bool ReadCid(const uint8_t* text, uint32_t size, const char* name, uint32_t* out) {
  const uint32_t at = Find(text, size, name);
  if (at == size) return false;
  uint32_t p = at;
  for (uint32_t i = 0; name[i] != '\0'; ++i) ++p;
  if (++p > size) return false;  // the '=' (any character)
  while (p < size && (text[p] == ' ' || text[p] == '\t' || text[p] == '\n' || text[p] == '\r' ||
                      text[p] == '\v' || text[p] == '\f')) {
    ++p;
  }
  if (p + 2 < size && text[p] == '0' && (text[p + 1] == 'x' || text[p + 1] == 'X') &&
      HexDigit(text[p + 2]) >= 0) {
    p += 2;
  }
  if (p >= size || HexDigit(text[p]) < 0) return false;
  uint64_t v = 0;
  for (; p < size && HexDigit(text[p]) >= 0; ++p) {
    // strtoul saturates; the value kept is its low 32 bits.
    v = v > (UINT64_MAX >> 4) ? UINT64_MAX : (v << 4) | static_cast<uint64_t>(HexDigit(text[p]));
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

// qemu's quoted-value read: after NAME and two more characters (`="`), up to the next '"'.
// Returns false when NAME is absent; `*unterminated` when no quote closes the value.
bool ReadQuoted(const uint8_t* text, uint32_t size, const char* name, TextRange* out,
                bool* unterminated) {
  const uint32_t at = Find(text, size, name);
  if (at == size) return false;
  uint32_t p = at + 2;
  for (uint32_t i = 0; name[i] != '\0'; ++i) ++p;
  uint32_t end = p;
  while (end < size && text[end] != '"') ++end;
  if (p >= size || end >= size) {
    *unterminated = true;
    return true;
  }
  *out = {p, end - p};
  return true;
}

}  // namespace

DescriptorKeys ReadDescriptorKeys(base::ByteView text) {
  DescriptorKeys k;
  uint32_t size = 0;
  const uint32_t limit = text.size() > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(text.size());
  while (size < limit && text.data()[size] != 0) ++size;
  const uint8_t* t = text.data();
  // Both are read whatever the first gives (qemu reads both).
  const bool cid_read = ReadCid(t, size, "CID", &k.cid);
  const bool parent_read = ReadCid(t, size, "parentCID", &k.parent_cid);
  k.cids_readable = cid_read && parent_read;
  ReadQuoted(t, size, "parentFileNameHint", &k.parent_file_name_hint, &k.hint_unterminated);
  bool create_unterminated = false;
  ReadQuoted(t, size, "createType", &k.create_type, &create_unterminated);
  if (create_unterminated) k.create_type = {};
  return k;
}

uint64_t Descriptor::StatedSizeBytes() const {
  uint64_t total = 0;
  for (uint32_t i = 0; i < extent_count && i < kMaxExtents; ++i) {
    uint64_t bytes = 0;
    if (!base::CheckedMul(extents[i].sectors, 512, &bytes) ||
        !base::CheckedAdd(total, bytes, &total)) {
      return UINT64_MAX;
    }
  }
  return total;
}

bool IsDescriptorFileType(base::ByteView type) {
  static constexpr const char* kTypes[] = {"monolithicFlat", "vmfs", "vmfsSparse", "seSparse",
                                           "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"};
  for (const char* t : kTypes) {
    uint32_t n = 0;
    while (t[n] != '\0') ++n;
    if (n == type.size() && __builtin_memcmp(t, type.data(), n) == 0) return true;
  }
  return false;
}

bool LooksLikeDescriptor(base::ByteView bytes) {
  const uint8_t* p = bytes.data();
  uint64_t at = 0;
  const uint64_t end = bytes.size();
  // Each step consumes at least one byte, so the walk is bounded by the probe's size.
  while (at < end) {
    if (p[at] == '#') {
      while (at < end && p[at] != '\n') ++at;
      ++at;
      continue;
    }
    if (p[at] == ' ') {
      while (at < end && p[at] == ' ') ++at;
      if (at < end && p[at] == '\n') {
        ++at;
        continue;
      }
      return false;
    }
    static constexpr const char* kVersions[] = {"version=1\n", "version=2\n", "version=3\n",
                                                "version=1\r\n", "version=2\r\n",
                                                "version=3\r\n"};
    for (const char* v : kVersions) {
      uint64_t n = 0;
      while (v[n] != '\0' && at + n < end && p[at + n] == static_cast<uint8_t>(v[n])) ++n;
      if (v[n] == '\0') return true;
    }
    return false;
  }
  return false;
}

base::Status<DescriptorError> ParseDescriptor(base::ByteView text, Descriptor* out) {
  *out = Descriptor{};
  // qemu holds the descriptor as a C string: it ends at the first NUL.
  uint32_t size = 0;
  const uint64_t limit = text.size() < kMaxDescriptorBytes ? text.size() : kMaxDescriptorBytes;
  while (size < limit && text.data()[size] != 0) ++size;
  out->keys = ReadDescriptorKeys(text.Sub(0, size));

  // Every line start is scanned. A scan starts by skipping blanks, line ends included, so lines
  // that are blank scan exactly like the next line with a token (qemu then takes that line
  // twice); the scan from a token is remembered so a run of blank lines costs linear time.
  uint32_t last_start = UINT32_MAX;
  LineKind last_kind = LineKind::kSkip;
  Extent last_extent;
  for (uint32_t pos = 0; pos < size;) {
    uint32_t end = pos;
    while (end < size && text.data()[end] != '\n') ++end;
    // Everything between an earlier line start and last_start is blank.
    uint32_t start = last_start != UINT32_MAX && pos <= last_start ? last_start : pos;
    while (start < size && IsCSpace(text.data()[start])) ++start;
    if (start != last_start) {
      last_start = start;
      last_extent = Extent{};
      last_kind = ScanExtentLine(text.data(), size, start, &last_extent);
    }
    const Extent& e = last_extent;
    switch (last_kind) {
      case LineKind::kSkip: break;
      case LineKind::kInvalid:
        out->bad_line = {pos, end - pos};
        return base::Fail(DescriptorError::kBadExtentLine);
      case LineKind::kExtent:
        if (out->extent_count >= kMaxExtents) return base::Fail(DescriptorError::kTooManyExtents);
        out->extents[out->extent_count++] = e;
        break;
    }
    pos = end + 1;
  }
  return {};
}

}  // namespace instar::vmdk
