// Hostile guest: floods the host with requests in the way InfoConfig::flags selects, checks
// each status, then reports (send_error code 0, detail = number of calls that got the status
// the host must give):
//   1 debug text: 4,000 prints of 4 KiB of every byte value (control bytes, escapes, NULs, no
//     terminator anywhere), plus prints that are too long, end exactly at a region's end, run
//     one byte past it, or lie past the end of guest RAM;
//   2 records: 1,000 records of the one type the host declares (it keeps 100), records of the
//     wrong size or inner magic, an undeclared type; 130 record buffers of 1 MiB (the host
//     keeps 128 MiB) and one of 1 MiB + 1;
//   3 requests: 20,000 out-of-range reads, 10,000 progress reports (half of them done > total),
//     100 errors (the host keeps the first), 2 results (the host keeps the first).
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "abi/status.h"
#include "abi/transport.h"
#include "crates/freestanding/guest_image.h"

namespace {

using instar::abi::CallStatus;
using instar::abi::CallTable;

// The record type the test declares: 16 bytes, at most 100.
constexpr uint32_t kFloodRecordMagic = 0x444F4C46;  // "FLOD"

uint8_t* Scratch() { return reinterpret_cast<uint8_t*>(instar::abi::kScratchMemBase); }

struct Tally {
  uint64_t as_expected = 0;
  void Expect(int32_t got, CallStatus want) {
    if (got == static_cast<int32_t>(want)) ++as_expected;
  }
};

const char* At(uint64_t gpa) { return reinterpret_cast<const char*>(gpa); }

void DebugText(const CallTable* t, Tally& tally) {
  uint8_t* text = Scratch();
  for (uint32_t i = 0; i < 4096; ++i) text[i] = static_cast<uint8_t>(i * 7 + 27);
  // debug_print returns nothing: the status is in the descriptor the runtime filled.
  const auto status = [] {
    return reinterpret_cast<const instar::abi::Request*>(instar::abi::kTransport.base)->status;
  };
  for (int i = 0; i < 4000; ++i) {
    t->debug_print(reinterpret_cast<const char*>(text), 4096);
    tally.Expect(status(), CallStatus::kOk);
  }
  t->debug_print(reinterpret_cast<const char*>(text), 4097);
  tally.Expect(status(), CallStatus::kTooLong);
  t->debug_print(reinterpret_cast<const char*>(text), 0xFFFFFFFFu);
  tally.Expect(status(), CallStatus::kTooLong);
  const uint64_t end = instar::abi::kScratch.end();
  t->debug_print(At(end - 16), 16);
  tally.Expect(status(), CallStatus::kOk);
  t->debug_print(At(end - 16), 17);
  tally.Expect(status(), CallStatus::kBadBuffer);
  t->debug_print(At(instar::abi::kGuestRamSize - 8), 8);
  tally.Expect(status(), CallStatus::kBadBuffer);
  t->debug_print(At(instar::abi::kGuestRamSize - 8), 16);
  tally.Expect(status(), CallStatus::kBadBuffer);
  // Two adjacent user regions (operation binary, call table) are still two buffers.
  t->debug_print(At(instar::abi::kCallTable.base - 8), 16);
  tally.Expect(status(), CallStatus::kBadBuffer);
}

void Records(const CallTable* t, Tally& tally) {
  uint8_t* record = Scratch();
  for (int i = 0; i < 16; ++i) record[i] = 0;
  *reinterpret_cast<uint32_t*>(record) = kFloodRecordMagic;
  for (int i = 0; i < 1000; ++i) {
    tally.Expect(t->send_record(kFloodRecordMagic, record, 16),
                 i < 100 ? CallStatus::kOk : CallStatus::kBadResult);
  }
  tally.Expect(t->send_record(kFloodRecordMagic, record, 15), CallStatus::kBadResult);
  tally.Expect(t->send_record(kFloodRecordMagic, record, 0xFFFFFFFFu), CallStatus::kBadResult);
  tally.Expect(t->send_record(0x12345678, record, 16), CallStatus::kBadResult);
  *reinterpret_cast<uint32_t*>(record) = 0x12345678;
  tally.Expect(t->send_record(kFloodRecordMagic, record, 16), CallStatus::kBadResult);
  // Record buffers: valid headers would not matter, the host bounds the bytes it keeps.
  const uint32_t mib = instar::abi::kMaxInfoRecordBytes;
  tally.Expect(t->send_records(Scratch(), mib + 1), CallStatus::kBadResult);
  const uint64_t keep = instar::abi::kMaxInfoRecordTotalBytes / mib;
  for (uint64_t i = 0; i < keep + 2; ++i) {
    tally.Expect(t->send_records(Scratch(), mib), i < keep ? CallStatus::kOk : CallStatus::kBadResult);
  }
}

void Requests(const CallTable* t, Tally& tally) {
  const uint64_t sectors = (t->get_input_capacity(0) + 511) / 512;
  for (int i = 0; i < 20000; ++i) {
    tally.Expect(t->read_input_sector(0, sectors + i, 1, Scratch()), CallStatus::kOutOfRange);
  }
  const auto status = [] {
    return reinterpret_cast<const instar::abi::Request*>(instar::abi::kTransport.base)->status;
  };
  for (uint64_t i = 0; i < 10000; ++i) {
    t->send_progress(i, i % 2 == 0 ? i : i - 1);
    tally.Expect(status(), i % 2 == 0 ? CallStatus::kOk : CallStatus::kBadRequest);
  }
  for (uint32_t i = 0; i < 100; ++i) t->send_error(1000 + i, i);
  instar::abi::InfoResult result{};
  result.magic = instar::abi::kInfoResultMagic;
  result.format = static_cast<uint32_t>(instar::abi::ImageFormat::kRaw);
  tally.Expect(t->send_info_result(&result), CallStatus::kOk);
  tally.Expect(t->send_info_result(&result), CallStatus::kBadResult);
}

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(const CallTable* t) {
  const auto* config = static_cast<const instar::abi::InfoConfig*>(t->get_operation_config(nullptr));
  Tally tally;
  switch (config->flags) {
    case 1: DebugText(t, tally); break;
    case 2: Records(t, tally); break;
    case 3: Requests(t, tally); break;
    default: break;
  }
  // Case 3 has already sent its first error; this one is dropped and the tally goes in the
  // debug text instead.
  char line[] = "tally 0000000000\n";
  uint64_t v = tally.as_expected;
  for (int i = 15; i >= 6; --i, v /= 10) line[i] = static_cast<char>('0' + v % 10);
  t->debug_print(line, sizeof(line) - 1);
  t->send_error(0, tally.as_expected);
  t->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
