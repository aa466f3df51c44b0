// qemu-img resize's SIZE argument: an optional leading '+' or '-' (relative), then a number
// with qemu's size syntax: decimal, or hexadecimal with 0x; a fraction when a unit suffix
// follows; suffixes b/B (bytes), k/K, M, G, T, P, E (binary multiples, either case);
// surrounding rules and outcomes as measured on qemu-img 7.2. Host-only, pure.
#pragma once

#include <cstdint>
#include <string>

namespace instar::cli {

enum class SizeSign { kAbsolute, kPlus, kMinus };

enum class SizeParseStatus {
  kOk,
  kInvalid,     // "Parameter 'size' expects a non-negative number below 2^64..."
  kOutOfRange,  // "Value '...' is out of range for parameter 'size'"
};

struct ParsedSize {
  SizeParseStatus status = SizeParseStatus::kInvalid;
  SizeSign sign = SizeSign::kAbsolute;
  uint64_t bytes = 0;
  std::string number;            // the text after the sign, as qemu-img quotes it
  bool hex_with_suffix = false;  // qemu-img warns that this is deprecated
};

ParsedSize ParseResizeSize(const std::string& argument);

}  // namespace instar::cli
