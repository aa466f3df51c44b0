// What the info operation's format describers share: the image reader, the scratch arena, the
// result being filled and the record buffer. Guest-only; allocation is from the scratch arena.
#pragma once

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "abi/info_records.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/result.h"
#include "ops/common/device_io.h"

namespace instar::ops::info {

using InfoStatus = base::Status<abi::InfoError>;

// Appends records (abi/info_records.h) to an arena buffer of kMaxInfoRecordBytes and sends
// it through send_records whenever the next record would not fit, and at Flush.
class RecordWriter {
 public:
  RecordWriter(const abi::CallTable* table, base::Arena& arena);

  // Appends a record of `fixed_size` bytes (its header's size and type are filled in here)
  // followed by up to two texts. Fails once the buffer is full.
  InfoStatus Append(abi::InfoRecordType type, void* fixed, uint32_t fixed_size,
                    base::ByteView text1 = {}, base::ByteView text2 = {});
  InfoStatus AppendText(abi::InfoRecordType type, base::ByteView text);
  InfoStatus AppendErrorValue(uint64_t value);

  // Sends what is buffered.
  InfoStatus Flush();

 private:
  const abi::CallTable* table_;
  uint8_t* buffer_;
  uint32_t used_ = 0;
};

struct InfoContext {
  const abi::CallTable* table;
  const abi::InfoConfig& config;
  DeviceIo& image;
  base::Arena& arena;
  abi::InfoResult& result;
  RecordWriter& records;

  // Reads [offset, offset+length) of device `reader` into `out`; what lies past the end of
  // the file reads as zeros, as qemu's block layer returns it.
  InfoStatus ReadPaddedInto(DeviceIo& reader, uint64_t offset, uint64_t length,
                            uint8_t* out);
  // The same into a new arena allocation.
  base::Result<base::ByteView, abi::InfoError> ReadPadded(DeviceIo& reader, uint64_t offset,
                                                          uint64_t length);
  base::Result<base::ByteView, abi::InfoError> ReadPadded(uint64_t offset, uint64_t length) {
    return ReadPadded(image, offset, length);
  }
};

InfoStatus DescribeQcow2(InfoContext& ctx, base::ByteView head);
InfoStatus DescribeVmdk(InfoContext& ctx, base::ByteView head);

}  // namespace instar::ops::info
