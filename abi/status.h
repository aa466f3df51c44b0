// Status codes the host returns for every call-table request. Append-only: a value once
// shipped keeps its meaning. Header-only, freestanding-safe.
#pragma once

#include <stdint.h>

namespace instar::abi {

enum class CallStatus : int32_t {
  kOk = 0,
  kBadDevice = -1,     // device index not attached
  kOutOfRange = -2,    // sector range outside the device (or past its write limit)
  kBadBuffer = -3,     // buffer not inside guest RAM's user pages
  kTooLong = -4,       // length above the per-request cap
  kReadOnly = -5,      // write to a device attached read-only
  kIoError = -6,       // the host's pread/pwrite failed
  kBadRequest = -7,    // unknown request kind or malformed descriptor
  kBadResult = -8,     // result struct refused (size, magic, fields)
};

}  // namespace instar::abi
