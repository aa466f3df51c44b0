// Hostile guest: sends every kind of malformed request the transport must refuse (out of
// range, oversized, overflowing, bad buffers, writes to a read-only device, garbage
// descriptors rung directly on the doorbell), prints each status, then completes with an error
// report (code 0, detail = number of requests that were refused as expected).
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/memory_map.h"
#include "abi/status.h"
#include "abi/transport.h"
#include "crates/freestanding/guest_image.h"

namespace {

using instar::abi::CallStatus;
using instar::abi::Request;
using instar::abi::RequestKind;

uint8_t* Scratch() { return reinterpret_cast<uint8_t*>(instar::abi::kScratchMemBase); }

// Rings the doorbell with a descriptor this guest wrote itself.
int32_t Raw(const Request& request) {
  auto* slot = reinterpret_cast<Request*>(instar::abi::kTransport.base);
  *slot = request;
  slot->status = 12345;
  asm volatile("movq $1, (%0)" : : "r"(instar::abi::kDoorbell.base) : "memory");
  return slot->status;
}

Request Io(RequestKind kind, uint32_t device, uint64_t sector, uint32_t count, uint64_t buffer) {
  Request r{};
  r.magic = instar::abi::kRequestMagic;
  r.kind = static_cast<uint32_t>(kind);
  r.device = device;
  r.sector = sector;
  r.count = count;
  r.buffer = buffer;
  return r;
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* t) {
  const uint64_t scratch = instar::abi::kScratchMemBase;
  const uint64_t sectors = (t->get_input_capacity(0) + 511) / 512;
  struct Case {
    int32_t got;
    CallStatus want;
  } cases[] = {
      {t->read_input_sector(0, sectors, 1, Scratch()), CallStatus::kOutOfRange},
      {t->read_input_sector(0, ~0ull, 1, Scratch()), CallStatus::kOutOfRange},
      {t->read_input_sector(0, ~0ull / 512, 2, Scratch()), CallStatus::kOutOfRange},
      {t->read_input_sector(0, 0, 0xFFFFFFFFu, Scratch()), CallStatus::kTooLong},
      {t->read_input_sector(0, 0, (4u << 20) / 512 + 1, Scratch()), CallStatus::kTooLong},
      {t->read_input_sector(0, 0, 0, Scratch()), CallStatus::kBadRequest},
      {t->read_input_sector(7, 0, 1, Scratch()), CallStatus::kBadDevice},
      {t->read_output_sector(0, 1, Scratch()), CallStatus::kBadDevice},
      {t->write_input_sector(0, 0, 1, Scratch()), CallStatus::kReadOnly},
      {t->read_input_sector(0, 0, 1, reinterpret_cast<void*>(instar::abi::kPml4.base)),
       CallStatus::kBadBuffer},
      {t->read_input_sector(0, 0, 1, reinterpret_cast<void*>(instar::abi::kScratch.end() - 100)),
       CallStatus::kBadBuffer},
      {t->read_input_sector(0, 0, 1, reinterpret_cast<void*>(0x40000000)), CallStatus::kBadBuffer},
      {t->read_input_sector(0, 0, 1, reinterpret_cast<void*>(~0ull - 10)), CallStatus::kBadBuffer},
      {Raw(Request{}), CallStatus::kBadRequest},
      {Raw(Io(static_cast<RequestKind>(999), 0, 0, 1, scratch)), CallStatus::kBadRequest},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, instar::abi::kGdt.base)),
       CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kWriteSectors, 0, 0, 8, scratch)), CallStatus::kReadOnly},
      {Raw(Io(RequestKind::kDeviceCapacity, 0x7FFFFFFF, 0, 0, 0)), CallStatus::kBadDevice},
  };
  uint64_t refused_as_expected = 0;
  char line[] = "case 00: status -0\n";
  for (uint32_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    if (cases[i].got == static_cast<int32_t>(cases[i].want)) ++refused_as_expected;
    line[5] = static_cast<char>('0' + i / 10);
    line[6] = static_cast<char>('0' + i % 10);
    const int32_t s = cases[i].got;
    line[16] = s < 0 ? '-' : ' ';
    line[17] = static_cast<char>('0' + (s < 0 ? -s : s) % 10);
    t->debug_print(line, sizeof(line) - 1);
  }
  t->send_error(0, refused_as_expected);
  t->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
