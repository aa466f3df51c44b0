// Device: an image file the host opened and attached to a VM. The guest only ever sees device
// indices; paths stay on the host. Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/chain_config.h"
#include "abi/image_format.h"
#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"

namespace instar::vmm {

inline constexpr uint32_t kSectorSize = 512;

// What request validation needs to know about a device (no fd: the validation is pure).
struct DeviceLimits {
  uint64_t size = 0;          // bytes
  uint32_t sector_size = kSectorSize;
  bool writable = false;
  uint64_t write_limit = 0;   // bytes; writes must end at or below it
};

struct Device {
  UniqueFd fd;
  DeviceLimits limits;
  abi::DeviceRole role = abi::DeviceRole::kImage;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  uint64_t virtual_size = 0;  // bytes, 0 when the host does not know it
  uint32_t cluster_size = 0;  // bytes, 0 when unknown or not clustered
};

struct DeviceSet {
  std::vector<Device> inputs;
  std::optional<Device> output;
};

// Opens `path` for attaching: a regular file or a block device, read-only unless `writable`.
// Errors carry the errno text the CLI prints ("No such file or directory", ...).
// A descriptor registered with SetOpenOverride (vmm/transport/open_overrides.h) for exactly
// `path` is used instead of opening it.
StatusOr<Device> OpenDevice(const std::string& path, bool writable, abi::DeviceRole role);
// Attaches an already-open descriptor (an invalid `fd` reports errno, as a failed open did).
StatusOr<Device> AttachOpened(UniqueFd fd, bool writable, abi::DeviceRole role);

// Makes the writes to `device` durable (fdatasync); the error carries the errno text.
Status SyncDevice(const Device& device);
// SyncDevice on every writable device of `devices`, as qemu flushes each image it closes.
Status SyncWritableDevices(const DeviceSet& devices);

// The ChainConfig the guest sees for `devices`.
abi::ChainConfig DescribeDevices(const DeviceSet& devices);

}  // namespace instar::vmm
