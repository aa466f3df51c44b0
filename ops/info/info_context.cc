#include "ops/info/info_context.h"

namespace instar::ops::info {

using base::Fail;

RecordWriter::RecordWriter(const abi::CallTable* table, base::Arena& arena)
    : table_(table), buffer_(arena.Allocate(abi::kMaxInfoRecordBytes, 8)) {}

InfoStatus RecordWriter::Flush() {
  if (used_ == 0) return {};
  if (table_->send_records(buffer_, used_) != 0) return Fail(abi::InfoError::kRecordsTooLarge);
  used_ = 0;
  return {};
}

InfoStatus RecordWriter::Append(abi::InfoRecordType type, void* fixed, uint32_t fixed_size,
                                base::ByteView text1, base::ByteView text2) {
  // Each text is bounded by its source (< 2^20 by the callers), so the sum cannot wrap.
  const uint64_t raw = uint64_t{fixed_size} + text1.size() + text2.size();
  const uint64_t size = (raw + 7) & ~uint64_t{7};
  if (buffer_ == nullptr || size > abi::kMaxInfoRecordBytes) {
    return Fail(abi::InfoError::kRecordsTooLarge);
  }
  if (size > abi::kMaxInfoRecordBytes - used_) TRY_STATUS(Flush());
  auto* header = static_cast<abi::InfoRecordHeader*>(fixed);
  header->type = static_cast<uint32_t>(type);
  header->size = static_cast<uint32_t>(size);
  uint8_t* out = buffer_ + used_;
  __builtin_memcpy(out, fixed, fixed_size);
  if (text1.size() != 0) __builtin_memcpy(out + fixed_size, text1.data(), text1.size());
  if (text2.size() != 0) {
    __builtin_memcpy(out + fixed_size + text1.size(), text2.data(), text2.size());
  }
  __builtin_memset(out + raw, 0, size - raw);
  used_ += static_cast<uint32_t>(size);
  return {};
}

InfoStatus RecordWriter::AppendText(abi::InfoRecordType type, base::ByteView text) {
  abi::InfoTextRecord r{};
  r.length = static_cast<uint32_t>(text.size());
  return Append(type, &r, sizeof r, text);
}

InfoStatus RecordWriter::AppendErrorValue(uint64_t value) {
  abi::InfoErrorValueRecord r{};
  r.value = value;
  return Append(abi::InfoRecordType::kErrorValue, &r, sizeof r);
}

InfoStatus InfoContext::ReadPaddedInto(DeviceIo& reader, uint64_t offset, uint64_t length,
                                       uint8_t* out) {
  __builtin_memset(out, 0, length);
  if (offset < reader.size()) {
    uint64_t n = reader.size() - offset;
    if (n > length) n = length;
    if (!reader.Read(offset, n, out).ok()) return Fail(abi::InfoError::kIoError);
  }
  return {};
}

base::Result<base::ByteView, abi::InfoError> InfoContext::ReadPadded(DeviceIo& reader,
                                                                     uint64_t offset,
                                                                     uint64_t length) {
  uint8_t* buffer = arena.Allocate(length, 512);
  if (buffer == nullptr) return Fail(abi::InfoError::kIoError);
  TRY_STATUS(ReadPaddedInto(reader, offset, length, buffer));
  return base::ByteView(buffer, length);
}

}  // namespace instar::ops::info
