#include "ops/common/device_io.h"

#include "abi/transport.h"
#include "crates/base/checked.h"


namespace instar::ops {
namespace {
constexpr uint64_t kSector = 512;
constexpr uint64_t kMaxSectorsPerCall = abi::kMaxTransferBytes / kSector;
}  // namespace

DeviceIo::DeviceIo(const abi::CallTable* table, uint32_t device)
    : table_(table), device_(device) {
  size_ = device == abi::kOutputDevice ? table->get_output_capacity()
                                        : table->get_input_capacity(device);
}

int32_t DeviceIo::ReadSectors(uint64_t sector, uint32_t count, void* buffer) {
  return device_ == abi::kOutputDevice ? table_->read_output_sector(sector, count, buffer)
                                       : table_->read_input_sector(device_, sector, count, buffer);
}

int32_t DeviceIo::WriteSectors(uint64_t sector, uint32_t count, const void* buffer) {
  return device_ == abi::kOutputDevice
             ? table_->write_output_sector(sector, count, buffer)
             : table_->write_input_sector(device_, sector, count, buffer);
}

base::Status<IoError> DeviceIo::Write(uint64_t offset, uint64_t length, const uint8_t* in) {
  uint64_t end = 0;
  if (!base::CheckedAdd(offset, length, &end)) return base::Fail(IoError::kPastEnd);
  while (length > 0) {
    const uint64_t sector = offset / kSector;
    const uint64_t within = offset % kSector;
    if (within != 0 || length < kSector) {
      // Partial sector: read it (zeros past the end), patch, write back.
      const bool exists = sector * kSector < size_;
      if (exists && ReadSectors(sector, 1, bounce_) != 0) return base::Fail(IoError::kReadFailed);
      if (!exists) __builtin_memset(bounce_, 0, kSector);
      uint64_t n = kSector - within;
      if (n > length) n = length;
      __builtin_memcpy(bounce_ + within, in, n);
      if (WriteSectors(sector, 1, bounce_) != 0) return base::Fail(IoError::kWriteFailed);
      in += n;
      offset += n;
      length -= n;
    } else {
      uint64_t sectors = length / kSector;
      if (sectors > kMaxSectorsPerCall) sectors = kMaxSectorsPerCall;
      if (WriteSectors(sector, static_cast<uint32_t>(sectors), in) != 0) {
        return base::Fail(IoError::kWriteFailed);
      }
      in += sectors * kSector;
      offset += sectors * kSector;
      length -= sectors * kSector;
    }
    if (offset > size_) size_ = offset;
  }
  // The host writes whole sectors: a write into an input's last, partial sector leaves the file
  // rounded up with zeros, where qemu's ends at its last byte.
  if (device_ != abi::kOutputDevice && size_ % kSector != 0 && end > size_ / kSector * kSector &&
      table_->set_input_size(device_, size_) != 0) {
    return base::Fail(IoError::kWriteFailed);
  }
  return {};
}

base::Status<IoError> DeviceIo::Flush() {
  if (table_->flush(device_) != 0) return base::Fail(IoError::kFlushFailed);
  return {};
}

base::Status<IoError> DeviceIo::Read(uint64_t offset, uint64_t length, uint8_t* out) {
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
