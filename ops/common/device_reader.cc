#include "ops/common/device_reader.h"

#include "abi/transport.h"
#include "crates/base/checked.h"


namespace instar::ops {
namespace {
constexpr uint64_t kSector = 512;
constexpr uint64_t kMaxSectorsPerCall = abi::kMaxTransferBytes / kSector;
}  // namespace

DeviceReader::DeviceReader(const abi::CallTable* table, uint32_t device)
    : table_(table), device_(device) {
  size_ = device == abi::kOutputDevice ? table->get_output_capacity()
                                        : table->get_input_capacity(device);
}

int32_t DeviceReader::ReadSectors(uint64_t sector, uint32_t count, void* buffer) {
  return device_ == abi::kOutputDevice ? table_->read_output_sector(sector, count, buffer)
                                       : table_->read_input_sector(device_, sector, count, buffer);
}

base::Status<IoError> DeviceReader::Read(uint64_t offset, uint64_t length, uint8_t* out) {
  uint64_t end = 0;
  const uint64_t readable = base::DivRoundUp(size_, kSector) * kSector;
  if (!base::CheckedAdd(offset, length, &end) || end > readable) {
    return base::Fail(IoError::kPastEnd);
  }
  while (length > 0) {
    const uint64_t sector = offset / kSector;
    const uint64_t within = offset % kSector;
    if (within != 0 || length < kSector) {
      // Partial sector: through the bounce buffer.
      if (ReadSectors(sector, 1, bounce_) != 0) return base::Fail(IoError::kReadFailed);
      uint64_t n = kSector - within;
      if (n > length) n = length;
      __builtin_memcpy(out, bounce_ + within, n);
      out += n;
      offset += n;
      length -= n;
      continue;
    }
    uint64_t sectors = length / kSector;
    if (sectors > kMaxSectorsPerCall) sectors = kMaxSectorsPerCall;
    if (ReadSectors(sector, static_cast<uint32_t>(sectors), out) != 0) {
      return base::Fail(IoError::kReadFailed);
    }
    out += sectors * kSector;
    offset += sectors * kSector;
    length -= sectors * kSector;
  }
  return {};
}

}  // namespace instar::ops
