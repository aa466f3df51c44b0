// The doorbell transport: the runtime fills one Request at TRANSPORT_ADDR, then stores to the
// doorbell page (an MMIO exit). The host copies the descriptor out, validates every field,
// performs it, writes `status` and `value` back and resumes the vCPU. Header-only,
// freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kRequestMagic = 0x51525349;  // "ISRQ"

// The process backend's doorbell: the guest writes one 8-byte word to kProcessDoorbellFd and
// reads one 8-byte reply from kProcessReplyFd; kProcessRamFd is the guest RAM memfd, closed by
// the loader once mapped. A word equal to kProcessFaultWord is followed by an 8-word fault
// frame (vector, error, rip, cr2, signal, code, 0, 0) written by the loader's signal handler.
inline constexpr int kProcessRamFd = 3;
inline constexpr int kProcessDoorbellFd = 4;
inline constexpr int kProcessReplyFd = 5;
inline constexpr uint64_t kProcessFaultWord = 0xFA017FA017FA0170ull;
inline constexpr uint32_t kOutputDevice = 0xFFFFFFFFu;

// Upper bound of one data request: 4 MiB moves a batch of clusters per exit and keeps a single
// request well inside the scratch region.
inline constexpr uint64_t kMaxTransferBytes = 4u << 20;
inline constexpr uint64_t kMaxDebugTextBytes = 4096;

enum class RequestKind : uint32_t {
  kReadSectors = 1,     // device, sector, count, buffer
  kWriteSectors = 2,    // device, sector, count, buffer
  kDeviceCount = 3,     // -> value
  kDeviceCapacity = 4,  // device -> value (bytes)
  kSectorSize = 5,      // device -> value (bytes)
  kDebugPrint = 6,      // buffer, length
  kProgress = 7,        // arg0 done, arg1 total
  kError = 8,           // arg0 operation error code, arg1 detail
  kComplete = 9,        // arg0 status
  kResult = 10,         // arg0 result magic, buffer, length
  kOperationReturned = 11,  // runtime: the operation's entry returned arg0 without completing
  kRecord = 12,         // arg0 record magic, buffer, length
  kSetSize = 13,        // device, arg0 new size in bytes (an input never below its size at open)
  kRecords = 14,        // buffer, length: the operation's variable-length records
  kFlush = 15,          // device: make its writes so far durable
};

struct Request {
  uint32_t magic;
  uint32_t kind;     // RequestKind
  uint32_t device;   // input index, or kOutputDevice
  uint32_t count;    // sectors
  uint64_t sector;
  uint64_t buffer;   // guest-physical address
  uint64_t length;   // bytes (text, results)
  uint64_t arg0;
  uint64_t arg1;
  int32_t status;    // written by the host: CallStatus
  uint32_t reserved;
  uint64_t value;    // written by the host
};
static_assert(sizeof(Request) == 72);
static_assert(offsetof(Request, sector) == 16);
static_assert(offsetof(Request, buffer) == 24);
static_assert(offsetof(Request, length) == 32);
static_assert(offsetof(Request, arg0) == 40);
static_assert(offsetof(Request, arg1) == 48);
static_assert(offsetof(Request, status) == 56);
static_assert(offsetof(Request, value) == 64);
static_assert(sizeof(Request) <= kTransport.size);

}  // namespace instar::abi
