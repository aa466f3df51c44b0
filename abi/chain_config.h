// ChainConfig: what the host tells the guest about every attached device, at CHAIN_CONFIG_ADDR.
// Written by the host before the first instruction; the guest only reads it. Header-only,
// freestanding-safe.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kChainConfigMagic = 0x4E484349;  // "ICHN"
inline constexpr uint32_t kMaxInputDevices = 64;

enum class DeviceRole : uint32_t {
  kImage = 0,        // the image the operation is about (input 0 for read-only operations)
  kBacking = 1,      // a member of a backing chain
  kExtent = 2,       // a data extent of a multi-file format (vmdk flat/split extents)
};

// ChainDevice::flags bits.
inline constexpr uint32_t kDeviceWritable = 1u << 0;

struct ChainDevice {
  uint32_t role;          // DeviceRole
  uint32_t format;        // ImageFormat, kAuto when the host does not know yet
  uint32_t flags;         // kDevice* bits
  uint32_t sector_size;   // bytes
  uint64_t capacity;      // bytes (the file's size when attached)
  uint64_t virtual_size;  // bytes, 0 when unknown
  uint32_t cluster_size;  // bytes, 0 when unknown or not clustered
  uint32_t reserved[3];
};
static_assert(sizeof(ChainDevice) == 48);
static_assert(offsetof(ChainDevice, capacity) == 16);
static_assert(offsetof(ChainDevice, virtual_size) == 24);
static_assert(offsetof(ChainDevice, cluster_size) == 32);

struct ChainConfig {
  uint32_t magic;
  uint32_t device_count;  // input devices, <= kMaxInputDevices
  uint32_t has_output;    // 1 when an output device is attached
  uint32_t reserved;
  ChainDevice input[kMaxInputDevices];
  ChainDevice output;
};
static_assert(offsetof(ChainConfig, input) == 16);
static_assert(offsetof(ChainConfig, output) == 16 + 48 * kMaxInputDevices);
static_assert(sizeof(ChainConfig) == 16 + 48 * (kMaxInputDevices + 1));
static_assert(sizeof(ChainConfig) <= kChainConfig.size);

}  // namespace instar::abi
