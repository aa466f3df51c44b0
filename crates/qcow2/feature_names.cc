#include "crates/qcow2/feature_names.h"

namespace instar::qcow2 {

FeatureName FeatureNameAt(base::ByteView table, uint64_t index) {
  FeatureName f;
  const uint64_t at = index * kFeatureNameEntryBytes;
  if (!table.Has(at, kFeatureNameEntryBytes)) return f;
  f.type = table.data()[at];
  f.bit = table.data()[at + 1];
  f.name_offset = at + 2;
  while (f.name_length < kFeatureNameBytes && table.data()[at + 2 + f.name_length] != 0) {
    ++f.name_length;
  }
  return f;
}

}  // namespace instar::qcow2
