#include "crates/resize/vmdk_text.h"

#include "crates/base/text_writer.h"

namespace instar::resize {
namespace {

using base::StartsWith;

bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

}  // namespace

bool RewriteVmdkSize(base::ByteView text, uint64_t sectors, uint8_t* out, uint64_t capacity) {
  const uint8_t* p = text.data();
  uint64_t n = text.size();
  // The embedded descriptor is NUL padded.
  for (uint64_t i = 0; i < n; ++i) {
    if (p[i] == 0) {
      n = i;
      break;
    }
  }
  base::TextWriter w(out, capacity);
  bool extent_seen = false;
  for (uint64_t start = 0; start < n;) {
    uint64_t end = start;
    while (end < n && p[end] != '\n') ++end;
    const uint8_t* line = p + start;
    const uint64_t len = end - start;
    const bool extent = StartsWith(line, len, "RW ") || StartsWith(line, len, "RDONLY ") ||
                        StartsWith(line, len, "NOACCESS ");
    if (extent && !extent_seen) {
      // Keep the access word and the separator, replace the number.
      uint64_t i = 0;
      while (i < len && line[i] != ' ') ++i;
      while (i < len && line[i] == ' ') ++i;
      uint64_t digits_end = i;
      while (digits_end < len && IsDigit(line[digits_end])) ++digits_end;
      if (digits_end == i) return false;
      w.Put(line, i);
      w.Number(sectors);
      w.Put(line + digits_end, len - digits_end);
      extent_seen = true;
    } else if (StartsWith(line, len, "ddb.geometry.cylinders")) {
      uint64_t open = 0;
      while (open < len && line[open] != '"') ++open;
      uint64_t close = open + 1;
      while (close < len && line[close] != '"') ++close;
      if (close >= len) {
        w.Put(line, len);
      } else {
        w.Put(line, open + 1);
        w.Number(sectors / (16 * 63));
        w.Put(line + close, len - close);
      }
    } else {
      w.Put(line, len);
    }
    if (end < n) w.Byte('\n');
    start = end + 1;
  }
  if (!extent_seen || !w.Fits()) return false;
  w.Pad();
  return true;
}

}  // namespace instar::resize
