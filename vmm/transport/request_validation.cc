#include "vmm/transport/request_validation.h"

namespace instar::vmm {

const DeviceLimits* FindDevice(uint32_t device, std::span<const DeviceLimits> inputs,
                               const DeviceLimits* output) {
  if (device == abi::kOutputDevice) return output;
  return device < inputs.size() ? &inputs[device] : nullptr;
}

abi::CallStatus ValidateIo(const abi::Request& request, std::span<const DeviceLimits> inputs,
                           const DeviceLimits* output, const GuestRam& ram, ValidatedIo* io) {
  const auto kind = static_cast<abi::RequestKind>(request.kind);
  if (kind != abi::RequestKind::kReadSectors && kind != abi::RequestKind::kWriteSectors) {
    return abi::CallStatus::kBadRequest;
  }
  const DeviceLimits* dev = FindDevice(request.device, inputs, output);
  if (dev == nullptr) return abi::CallStatus::kBadDevice;
  if (request.count == 0) return abi::CallStatus::kBadRequest;
  const uint64_t sector_size = dev->sector_size;
  if (request.count > abi::kMaxTransferBytes / sector_size) return abi::CallStatus::kTooLong;
  const uint64_t length = uint64_t{request.count} * sector_size;
  if (request.sector > UINT64_MAX / sector_size) return abi::CallStatus::kOutOfRange;
  const uint64_t offset = request.sector * sector_size;
  if (offset > UINT64_MAX - length) return abi::CallStatus::kOutOfRange;
  const bool write = kind == abi::RequestKind::kWriteSectors;
  if (write) {
    if (!dev->writable) return abi::CallStatus::kReadOnly;
    if (offset + length > dev->write_limit) return abi::CallStatus::kOutOfRange;
  } else {
    // The last partial sector of a file reads with zeros past its end.
    const uint64_t readable = (dev->size + sector_size - 1) / sector_size * sector_size;
    if (offset + length > readable) return abi::CallStatus::kOutOfRange;
  }
  uint8_t* buffer = ram.UserRange(request.buffer, length);
  if (buffer == nullptr) return abi::CallStatus::kBadBuffer;
  *io = {write, request.device == abi::kOutputDevice, request.device, offset, length, buffer};
  return abi::CallStatus::kOk;
}

}  // namespace instar::vmm
