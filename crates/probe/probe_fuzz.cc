// Fuzz target: format probing never reads past its input and always names a format.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "crates/probe/probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto format = instar::probe::ProbeFormat(instar::base::ByteView(data, size));
  if (static_cast<uint32_t>(format) >= instar::probe::kFormatCount) std::abort();
  if (std::strlen(instar::probe::FormatName(format)) == 0) std::abort();
  return 0;
}
