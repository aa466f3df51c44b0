#include "crates/vmdk/extent_name.h"

#include "crates/base/text_writer.h"

namespace instar::vmdk {

uint64_t WriteExtentFileName(const char* stem, uint32_t number, const char* suffix, uint8_t* out,
                             uint64_t capacity) {
  base::TextWriter w(out, capacity);
  w.Put(stem);
  w.Put("-s");
  if (number < 100) w.Byte('0');
  if (number < 10) w.Byte('0');
  w.Number(number);
  w.Put(suffix);
  return w.Fits() ? w.used() : 0;
}

}  // namespace instar::vmdk
