// The tail every operation shares: send the typed result (when there is one for the host),
// then either the error code and a failed completion or a successful completion. The guest
// runtime's send_complete does not return; a host-side call table's (the fuzz targets') does,
// hence the return value, which is the entry's.
#pragma once

#include <stdint.h>

#include "abi/call_table.h"
#include "crates/base/result.h"

namespace instar::ops {

template <class Result, class Error>
int FinishOperation(const abi::CallTable* table, int32_t (*send_result)(const Result*),
                    const Result* result, const base::Status<Error>& status) {
  if (result != nullptr) send_result(result);
  if (!status.ok()) {
    table->send_error(static_cast<uint32_t>(status.error().code), status.error().detail);
    table->send_complete(1);
    return 1;
  }
  table->send_complete(0);
  return 0;
}

}  // namespace instar::ops
