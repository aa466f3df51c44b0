// DeviceIo: byte-granular reads and writes on an attached device through the call table's
// sector calls, batching up to one transfer cap per exit. A partial-sector write is a
// read-modify-write of that sector. Guest-only; no allocation (the bounce sector lives in the
// reader).
#pragma once

#include <stdint.h>

#include "abi/call_table.h"
#include "crates/base/result.h"

namespace instar::ops {

enum class IoError { kReadFailed, kWriteFailed, kPastEnd, kFlushFailed };

class DeviceIo {
 public:
  // `device` is an input index or abi::kOutputDevice.
  DeviceIo(const abi::CallTable* table, uint32_t device);

  uint64_t size() const { return size_; }
  uint32_t device() const { return device_; }
  // Reads [offset, offset+length) into `out`; bytes past the end of the device read as zeros
  // up to the end of its last sector, beyond that the read fails with kPastEnd.
  base::Status<IoError> Read(uint64_t offset, uint64_t length, uint8_t* out);
  // Writes [offset, offset+length) from `in` (the host enforces the device's write limit).
  // The size seen by Read grows when the write ends past it; an input whose last sector the
  // write touched is then cut to that size (the host wrote the whole sector).
  base::Status<IoError> Write(uint64_t offset, uint64_t length, const uint8_t* in);
  // Makes the writes so far durable before any later one (the call table's flush).
  base::Status<IoError> Flush();

 private:
  int32_t ReadSectors(uint64_t sector, uint32_t count, void* buffer);
  int32_t WriteSectors(uint64_t sector, uint32_t count, const void* buffer);

  const abi::CallTable* table_;
  uint32_t device_;
  uint64_t size_ = 0;
  alignas(16) uint8_t bounce_[512];
};

}  // namespace instar::ops
