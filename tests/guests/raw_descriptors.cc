// Hostile guest: writes garbage request descriptors itself and rings the doorbell directly
// (InfoConfig::flags selects how: 1 the KVM MMIO store, 2 the process backend's pipes): bad
// magic and kinds, buffers on host structures, straddling the end of guest RAM or two regions
// or wrapping around the address space, counts and sectors whose product with the sector
// size overflows 32 or 64 bits, text, result and record lengths far beyond their caps. Then
// completes with an error report (code 0, detail = number refused as expected).
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "abi/memory_map.h"
#include "abi/status.h"
#include "abi/transport.h"
#include "crates/freestanding/guest_image.h"

namespace {

using instar::abi::CallStatus;
using instar::abi::Request;
using instar::abi::RequestKind;

uint32_t g_ring;

long Syscall3(long n, long a, long b, long c) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

int32_t Raw(const Request& request) {
  auto* slot = reinterpret_cast<Request*>(instar::abi::kTransport.base);
  *slot = request;
  slot->status = 12345;
  if (g_ring == 1) {
    asm volatile("movq $1, (%0)" : : "r"(instar::abi::kDoorbell.base) : "memory");
  } else {
    uint64_t word = 1;
    Syscall3(1, instar::abi::kProcessDoorbellFd, reinterpret_cast<long>(&word), 8);
    Syscall3(0, instar::abi::kProcessReplyFd, reinterpret_cast<long>(&word), 8);
  }
  return slot->status;
}

Request Buffer(RequestKind kind, uint64_t arg0, uint64_t buffer, uint64_t length) {
  Request r{};
  r.magic = instar::abi::kRequestMagic;
  r.kind = static_cast<uint32_t>(kind);
  r.arg0 = arg0;
  r.buffer = buffer;
  r.length = length;
  return r;
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
  g_ring = static_cast<const instar::abi::InfoConfig*>(t->get_operation_config(nullptr))->flags;
  const uint64_t scratch = instar::abi::kScratchMemBase;
  const uint64_t ram_end = instar::abi::kGuestRamSize;
  constexpr uint32_t kOut = instar::abi::kOutputDevice;
  Request no_magic = Io(RequestKind::kDeviceCount, 0, 0, 0, 0);
  no_magic.magic = 0;
  struct Case {
    int32_t got;
    CallStatus want;
  } cases[] = {
      {Raw(Request{}), CallStatus::kBadRequest},
      {Raw(no_magic), CallStatus::kBadRequest},
      {Raw(Io(static_cast<RequestKind>(999), 0, 0, 1, scratch)), CallStatus::kBadRequest},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, instar::abi::kGdt.base)),
       CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, instar::abi::kStackGuard.base)),
       CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kWriteSectors, 0, 0, 8, scratch)), CallStatus::kReadOnly},
      {Raw(Io(RequestKind::kDeviceCapacity, 0x7FFFFFFF, 0, 0, 0)), CallStatus::kBadDevice},
      // count x 512 overflows 32 bits (2^32 + 512, and exactly 2^32) or is far above the cap.
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 0x00800001u, scratch)), CallStatus::kTooLong},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 0x00800000u, scratch)), CallStatus::kTooLong},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 0xFFFFFFFFu, scratch)), CallStatus::kTooLong},
      // sector x 512 wraps to 0, or sector x 512 + length wraps past 2^64.
      {Raw(Io(RequestKind::kReadSectors, 0, 1ull << 55, 1, scratch)), CallStatus::kOutOfRange},
      {Raw(Io(RequestKind::kReadSectors, 0, ~0ull / 512, 8, scratch)), CallStatus::kOutOfRange},
      {Raw(Io(RequestKind::kWriteSectors, kOut, 1ull << 55, 1, scratch)), CallStatus::kBadDevice},
      // Buffers straddling the end of guest RAM, the end of scratch, two adjacent regions, or
      // wrapping around the address space.
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, ram_end - 256)), CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, ram_end)), CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, instar::abi::kScratch.end() - 511)),
       CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, instar::abi::kCallTable.base - 256)),
       CallStatus::kBadBuffer},
      {Raw(Io(RequestKind::kReadSectors, 0, 0, 1, ~0ull - 255)), CallStatus::kBadBuffer},
      // Text, result and record lengths: huge, wrapping, or reaching past guest RAM.
      {Raw(Buffer(RequestKind::kDebugPrint, 0, scratch, ~0ull)), CallStatus::kTooLong},
      {Raw(Buffer(RequestKind::kDebugPrint, 0, ~0ull - 7, 16)), CallStatus::kBadBuffer},
      {Raw(Buffer(RequestKind::kDebugPrint, 0, ram_end - 8, 16)), CallStatus::kBadBuffer},
      {Raw(Buffer(RequestKind::kResult, instar::abi::kInfoResultMagic, scratch,
                  (1ull << 32) + sizeof(instar::abi::InfoResult))),
       CallStatus::kBadResult},
      {Raw(Buffer(RequestKind::kResult, instar::abi::kInfoResultMagic, ram_end - 8,
                  sizeof(instar::abi::InfoResult))),
       CallStatus::kBadBuffer},
      {Raw(Buffer(RequestKind::kRecords, 0, scratch, ~0ull)), CallStatus::kBadResult},
      {Raw(Buffer(RequestKind::kRecords, 0, ~0ull - 7, 16)), CallStatus::kBadBuffer},
      {Raw(Buffer(RequestKind::kRecord, 0x12345678, scratch, ~0ull)), CallStatus::kBadResult},
  };
  uint64_t refused_as_expected = 0;
  for (const Case& c : cases) {
    if (c.got == static_cast<int32_t>(c.want)) ++refused_as_expected;
  }
  t->send_error(0, refused_as_expected);
  t->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
