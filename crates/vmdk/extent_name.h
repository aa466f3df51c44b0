// The file name qemu-img create gives extent `number` of a split VMDK: "<stem>-s<NNN><suffix>"
// (the descriptor's file name up to its last dot, a 1-based number of at least three digits,
// the dot and what follows). The host names the files it creates with it and the guest writes
// the same names into the descriptor. Pure, freestanding.
#pragma once

#include <stdint.h>

namespace instar::vmdk {

// Writes the name (no NUL) to out[0, capacity); returns its length, or 0 when it does not fit.
// `stem` and `suffix` are NUL-terminated.
uint64_t WriteExtentFileName(const char* stem, uint32_t number, const char* suffix, uint8_t* out,
                             uint64_t capacity);

}  // namespace instar::vmdk
