#include "tools/cli/size_format.h"

#include <cmath>
#include <cstdio>

#include "vmm/base/text_format.h"

namespace instar::cli {

std::string HumanSize(uint64_t bytes) {
  static const char* const kUnits[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  // Pick the largest binary unit that keeps the scaled value below 1000 (not 1024): scaling by
  // 1024/1000 before taking log2 moves the switch point.
  int exponent = 0;
  std::frexp(static_cast<double>(bytes) / (1000.0 / 1024.0), &exponent);
  const int unit = (exponent - 1) / 10;
  const double scaled = static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << (unit * 10));
  return Format("%0.3g %sB", scaled, kUnits[unit]);
}

}  // namespace instar::cli
