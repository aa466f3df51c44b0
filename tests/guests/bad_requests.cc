// Hostile guest: sends every kind of malformed request the transport must refuse, through the
// call table (out of range, oversized, overflowing, bad buffers, writes to a read-only device,
// unknown devices), prints each status, then completes with an error report (code 0, detail =
// number of requests that were refused as expected). With InfoConfig::flags 1 the host attaches
// input 0 writable and the guest tries to truncate it away or grow it past its write limit.
// raw_descriptors.cc does the same with descriptors it writes itself.
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "abi/memory_map.h"
#include "abi/status.h"
#include "abi/transport.h"
#include "crates/freestanding/guest_image.h"

namespace {

using instar::abi::CallStatus;

uint8_t* Scratch() { return reinterpret_cast<uint8_t*>(instar::abi::kScratchMemBase); }

struct Case {
  int32_t got;
  CallStatus want;
};

void Report(const instar::abi::CallTable* t, const Case* cases, uint32_t count) {
  Report(t, cases, sizeof(cases) / sizeof(cases[0]));
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
