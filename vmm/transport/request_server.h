// RequestServer: serves one doorbell ring. It copies the descriptor out of guest memory,
// validates it, moves data with pread/pwrite straight between the device and guest RAM, writes
// status and value back, and records what the operation reported (debug text, progress,
// errors, its typed result, completion). Host-only; everything read from the guest is hostile.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi/status.h"
#include "abi/transport.h"
#include "vmm/base/guest_ram.h"
#include "vmm/transport/device.h"

namespace instar::vmm {

// A record type the running operation may stream (send_record), with its exact size and how
// many the host keeps at most (which bounds the host memory a guest can make it use).
struct RecordSpec {
  uint32_t magic = 0;
  uint32_t size = 0;
  uint32_t max_count = 0;
};

// What the running operation may send: one typed result, and records of the listed types.
struct ExpectedResult {
  uint32_t magic = 0;
  uint32_t size = 0;
  std::vector<RecordSpec> records;
};

struct Record {
  uint32_t magic;
  std::vector<uint8_t> bytes;
};

struct OperationReport {
  std::optional<int32_t> completed;         // send_complete(status)
  std::optional<int64_t> returned;          // the entry returned without completing
  std::vector<uint8_t> result;              // exactly ExpectedResult::size bytes when sent
  std::vector<Record> records;              // in the order sent
  std::vector<uint8_t> record_buffer;       // send_records' buffers, unparsed (hostile)
  std::optional<std::pair<uint32_t, uint64_t>> error;  // first send_error(code, detail)
  std::string debug_text;                   // sanitised, bounded
  uint64_t requests = 0;
  uint64_t refused_requests = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t flushes = 0;  // flush requests that synced a device
};

struct ServerHooks {
  std::function<void(std::string_view)> on_debug_text;       // may be empty
  std::function<void(uint64_t, uint64_t)> on_progress;       // may be empty
  // Test hook for crash-consistency sweeps: fail every write after this many succeeded.
  std::optional<uint64_t> fail_writes_after;
  // False for qemu's cache mode `unsafe`: flush requests succeed without syncing, and the
  // launcher does not sync the written devices at the end.
  bool durable_writes = true;
};

class RequestServer {
 public:
  enum class Next { kResume, kStop };

  RequestServer(GuestRam ram, DeviceSet& devices, ExpectedResult expected, ServerHooks hooks);

  Next Serve();
  OperationReport& report() { return report_; }

  static constexpr uint64_t kMaxDebugTextTotal = 1u << 20;

 private:
  abi::CallStatus Handle(const abi::Request& request, uint64_t* value, Next* next);
  abi::CallStatus DoIo(const abi::Request& request);
  abi::CallStatus DoRecord(const abi::Request& request);
  abi::CallStatus DoSetSize(const abi::Request& request);
  abi::CallStatus DoFlush(const abi::Request& request);
  Device* DeviceAt(uint32_t index);

  GuestRam ram_;
  DeviceSet& devices_;
  std::vector<DeviceLimits> input_limits_;
  // Each input's size when opened: a guest may lengthen an input it writes, never shorten it
  // (so a hostile guest cannot destroy data by truncating).
  std::vector<uint64_t> input_open_sizes_;
  ExpectedResult expected_;
  ServerHooks hooks_;
  OperationReport report_;
  uint64_t writes_done_ = 0;
  std::vector<uint32_t> record_counts_;  // per ExpectedResult::records entry
};

// Replaces bytes that could drive a terminal (control characters other than \n and \t, DEL,
// anything above 0x7E) with '?'.
std::string SanitizeGuestText(std::string_view text);

}  // namespace instar::vmm
