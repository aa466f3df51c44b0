#include "tools/cli/resize_size.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace instar::cli {
namespace {

uint64_t SuffixMultiplier(char c) {
  switch (c) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return 1ull << 10;
    case 'm': case 'M': return 1ull << 20;
    case 'g': case 'G': return 1ull << 30;
    case 't': case 'T': return 1ull << 40;
    case 'p': case 'P': return 1ull << 50;
    case 'e': case 'E': return 1ull << 60;
    default: return 0;
  }
}

// strtoull with qemu's extra rules: some digits, no minus sign anywhere in what was consumed.
SizeParseStatus ParseInteger(const char* text, int base, uint64_t* value, const char** end) {
  errno = 0;
  char* stop = nullptr;
  const unsigned long long v = std::strtoull(text, &stop, base);
  *end = stop;
  if (stop == text) return SizeParseStatus::kInvalid;
  if (std::memchr(text, '-', static_cast<size_t>(stop - text)) != nullptr) {
    return SizeParseStatus::kInvalid;
  }
  // Trailing text makes the whole argument invalid, even when the number overflowed.
  if (errno == ERANGE) return *stop == '\0' ? SizeParseStatus::kOutOfRange : SizeParseStatus::kInvalid;
  *value = v;
  return SizeParseStatus::kOk;
}

}  // namespace

ParsedSize ParseResizeSize(const std::string& argument) {
  ParsedSize out;
  size_t skip = 0;
  if (!argument.empty() && argument[0] == '+') {
    out.sign = SizeSign::kPlus;
    skip = 1;
  } else if (!argument.empty() && argument[0] == '-') {
    out.sign = SizeSign::kMinus;
    skip = 1;
  }
  out.number = argument.substr(skip);
  const char* text = out.number.c_str();

  uint64_t value = 0;
  const char* end = nullptr;
  out.status = ParseInteger(text, 10, &value, &end);
  if (out.status != SizeParseStatus::kOk) return out;
  bool hex = false;
  // Fixed-point fraction in units of 2^-64.
  uint64_t fraction = 0;
  if (value == 0 && (*end == 'x' || *end == 'X')) {
    out.status = ParseInteger(text, 16, &value, &end);
    if (out.status != SizeParseStatus::kOk) return out;
    if (*end == '.') {
      out.status = SizeParseStatus::kInvalid;
      return out;
    }
    hex = true;
  } else if (*end == '.') {
    char* stop = nullptr;
    errno = 0;
    const double f = std::strtod(end, &stop);
    if (stop == end || errno != 0 || !std::isfinite(f)) {
      ++end;  // "1." alone: no fractional digits
    } else if (std::memchr(end, 'e', static_cast<size_t>(stop - end)) != nullptr ||
               std::memchr(end, 'E', static_cast<size_t>(stop - end)) != nullptr) {
      out.status = SizeParseStatus::kInvalid;
      return out;
    } else {
      end = stop;
      const double scaled = std::ldexp(f, 64);
      fraction = scaled >= std::ldexp(1.0, 64) ? 0 : static_cast<uint64_t>(scaled);
    }
  }
  uint64_t multiplier = SuffixMultiplier(*end);
  if (multiplier != 0) {
    out.hex_with_suffix = hex;
    ++end;
  } else {
    multiplier = 1;
  }
  if (*end != '\0') {
    out.status = SizeParseStatus::kInvalid;
    return out;
  }
  if (multiplier == 1) {
    // A fraction needs a unit.
    if (fraction != 0) {
      out.status = SizeParseStatus::kInvalid;
      return out;
    }
    out.bytes = value;
    return out;
  }
  // value.fraction * multiplier, exactly, rounding half a byte up.
  const unsigned __int128 whole = static_cast<unsigned __int128>(value) * multiplier;
  const unsigned __int128 part = static_cast<unsigned __int128>(fraction) * multiplier;
  const unsigned __int128 total =
      whole + (part >> 64) + ((static_cast<uint64_t>(part) >> 63) & 1);
  if ((total >> 64) != 0) {
    out.status = SizeParseStatus::kOutOfRange;
    return out;
  }
  out.bytes = static_cast<uint64_t>(total);
  return out;
}

}  // namespace instar::cli
