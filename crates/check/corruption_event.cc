#include "crates/check/corruption_event.h"

#include "crates/base/endian.h"

namespace instar::check {

void SignalCorruption(CheckState& s, abi::FindingKind kind, uint64_t a, uint64_t b) {
  if (s.corruption_signaled) return;
  s.corruption_signaled = true;
  s.sink->Emit(kind, a, b, s.writable ? 1 : 0);
  if (!s.writable || s.image.header.version < 3) return;
  const uint64_t features = s.image.header.incompatible_features | qcow2::kIncompatCorrupt;
  uint8_t field[8];
  base::StoreBe64(field, features);
  if (s.io->Write(72, sizeof field, field)) s.image.header.incompatible_features = features;
}

}  // namespace instar::check
