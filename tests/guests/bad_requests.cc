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

int Report(const instar::abi::CallTable* t, const Case* cases, uint32_t count) {
  uint64_t refused_as_expected = 0;
  char line[] = "case 00: status -0\n";
  for (uint32_t i = 0; i < count; ++i) {
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

// Input 0 is writable: shorter than at open, past the write limit, devices that are no input.
int TruncateWritableInput(const instar::abi::CallTable* t) {
  const uint64_t size = t->get_input_capacity(0);
  const Case cases[] = {
      {t->set_input_size(0, 0), CallStatus::kOutOfRange},
      {t->set_input_size(0, size - 1), CallStatus::kOutOfRange},
      {t->set_input_size(0, ~0ull), CallStatus::kOutOfRange},
      {t->set_input_size(7, size), CallStatus::kBadDevice},
      {t->set_input_size(instar::abi::kOutputDevice, size), CallStatus::kBadDevice},
  };
  return Report(t, cases, sizeof(cases) / sizeof(cases[0]));
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* t) {
  const auto* config =
      static_cast<const instar::abi::InfoConfig*>(t->get_operation_config(nullptr));
  if (config->flags == 1) return TruncateWritableInput(t);
  const uint64_t sectors = (t->get_input_capacity(0) + 511) / 512;
  const Case cases[] = {
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
      {t->send_record(0x12345678, Scratch(), 16), CallStatus::kBadResult},
      {t->set_output_size(0), CallStatus::kBadDevice},
      {t->set_input_size(0, 0), CallStatus::kReadOnly},
  };
  return Report(t, cases, sizeof(cases) / sizeof(cases[0]));
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
