// Pure validation of a data request the guest made: device index, sector range against the
// device, transfer length cap, read-only refusal, buffer inside one user region of guest RAM.
// No I/O; unit-tested with random descriptors. Host-only.
#pragma once

#include <cstdint>
#include <span>

#include "abi/status.h"
#include "abi/transport.h"
#include "vmm/base/guest_ram.h"
#include "vmm/transport/device.h"

namespace instar::vmm {

struct ValidatedIo {
  bool write = false;
  bool output = false;      // the output device, else inputs[device]
  uint32_t device = 0;
  uint64_t offset = 0;      // bytes
  uint64_t length = 0;      // bytes
  uint8_t* buffer = nullptr;  // host pointer into guest RAM
};

// `request.kind` must be kReadSectors or kWriteSectors.
abi::CallStatus ValidateIo(const abi::Request& request, std::span<const DeviceLimits> inputs,
                           const DeviceLimits* output, const GuestRam& ram, ValidatedIo* io);

// Resolves the device a non-data request names (capacity, sector size).
const DeviceLimits* FindDevice(uint32_t device, std::span<const DeviceLimits> inputs,
                               const DeviceLimits* output);

}  // namespace instar::vmm
