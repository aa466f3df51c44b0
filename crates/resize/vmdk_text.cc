#include "crates/resize/vmdk_text.h"

#include "crates/base/text_writer.h"

namespace instar::resize {
namespace {

using base::StartsWith;

bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

// qemu opens only RW lines as extents.
bool IsExtentLine(const uint8_t* line, uint64_t len) { return StartsWith(line, len, "RW "); }

// [open, close) of the first quoted value on the line; false when there is none.
bool QuotedValue(const uint8_t* line, uint64_t len, uint64_t* open, uint64_t* close) {
  uint64_t o = 0;
  while (o < len && line[o] != '"') ++o;
  uint64_t c = o + 1;
  while (c < len && line[c] != '"') ++c;
  if (c >= len) return false;
  *open = o + 1;
  *close = c;
  return true;
}

// The decimal value of `key`'s quoted value, or `fallback` when absent, empty, zero or too
// long to be a geometry value.
uint64_t GeometryValue(const uint8_t* p, uint64_t n, const char* key, uint64_t fallback) {
  for (uint64_t start = 0; start < n;) {
    uint64_t end = start;
    while (end < n && p[end] != '\n') ++end;
    uint64_t open = 0;
    uint64_t close = 0;
    if (StartsWith(p + start, end - start, key) &&
        QuotedValue(p + start, end - start, &open, &close) && close > open &&
        close - open <= 6) {
      uint64_t v = 0;
      for (uint64_t i = open; i < close; ++i) {
        if (!IsDigit(p[start + i])) return fallback;
        v = v * 10 + (p[start + i] - '0');
      }
      return v == 0 ? fallback : v;
    }
    start = end + 1;
  }
  return fallback;
}

}  // namespace

bool RewriteVmdkDescriptor(base::ByteView text, const DescriptorSizes& sizes, uint8_t* out,
                           uint64_t capacity, uint64_t* length) {
  const uint8_t* p = text.data();
  uint64_t n = text.size();
  // An embedded descriptor is NUL padded; qemu reads a descriptor file up to its first NUL.
  for (uint64_t i = 0; i < n; ++i) {
    if (p[i] == 0) {
      n = i;
      break;
    }
  }
  // The start of the line to rewrite.
  uint64_t target = UINT64_MAX;
  for (uint64_t start = 0; start < n;) {
    uint64_t end = start;
    while (end < n && p[end] != '\n') ++end;
    const bool named = sizes.last_extent_at >= start && sizes.last_extent_at < end;
    if (sizes.last_extent_at == UINT64_MAX ? IsExtentLine(p + start, end - start) : named) {
      target = start;
    }
    start = end + 1;
  }
  if (target == UINT64_MAX || !IsExtentLine(p + target, n - target)) return false;
  const uint64_t heads = GeometryValue(p, n, "ddb.geometry.heads", 16);
  const uint64_t track = GeometryValue(p, n, "ddb.geometry.sectors", 63);

  base::TextWriter w(out, capacity);
  for (uint64_t start = 0; start < n;) {
    uint64_t end = start;
    while (end < n && p[end] != '\n') ++end;
    const uint8_t* line = p + start;
    const uint64_t len = end - start;
    bool newline_written = false;
    if (start == target) {
      // Keep the access word and the separator, replace the number.
      uint64_t i = 0;
      while (i < len && line[i] != ' ') ++i;
      while (i < len && line[i] == ' ') ++i;
      uint64_t digits_end = i;
      while (digits_end < len && IsDigit(line[digits_end])) ++digits_end;
      if (digits_end == i) return false;
      w.Put(line, i);
      w.Number(sizes.last_extent_sectors);
      w.Put(line + digits_end, len - digits_end);
      for (uint32_t a = 0; a < sizes.added_count; ++a) {
        w.Byte('\n');
        w.Put("RW ");
        w.Number(sizes.added[a].sectors);
        w.Put(" SPARSE \"");
        w.Put(sizes.added[a].name.data(), sizes.added[a].name.size());
        w.Byte('"');
      }
      // The text ended on the last extent line: the new lines still end with one.
      if (sizes.added_count != 0 && end >= n) {
        w.Byte('\n');
        newline_written = true;
      }
    } else if (StartsWith(line, len, "ddb.geometry.cylinders")) {
      uint64_t open = 0;
      uint64_t close = 0;
      if (!QuotedValue(line, len, &open, &close)) {
        w.Put(line, len);
      } else {
        w.Put(line, open);
        w.Number(sizes.total_sectors / (heads * track));
        w.Put(line + close, len - close);
      }
    } else {
      w.Put(line, len);
    }
    if (end < n && !newline_written) w.Byte('\n');
    start = end + 1;
  }
  if (!w.Fits()) return false;
  *length = w.used();
  w.Pad();
  return true;
}

bool CreateTypeIs(base::ByteView value, const char* want) {
  const uint64_t start = value.size() >= 2 && value.data()[0] == '"' ? 1 : 0;
  const uint64_t length = value.size() - 2 * start;
  for (uint64_t i = 0; want[i] != '\0' || i < length; ++i) {
    if (i >= length || want[i] == '\0' || value.data()[start + i] != static_cast<uint8_t>(want[i])) {
      return false;
    }
  }
  return true;
}

bool RewriteVmdkSize(base::ByteView text, uint64_t sectors, uint8_t* out, uint64_t capacity) {
  DescriptorSizes sizes;
  sizes.total_sectors = sectors;
  sizes.last_extent_sectors = sectors;
  uint64_t length = 0;
  return RewriteVmdkDescriptor(text, sizes, out, capacity, &length);
}

}  // namespace instar::resize
