// FakeCallTable: a host-side abi::CallTable over in-memory devices, for driving an operation's
// freestanding function (ops/<op>/<op>.h) on the host, as the fuzz targets do. It serves what
// the request server serves and asserts what the host relies on: every read inside its
// device, every transfer inside the transport's cap, writes only to writable devices, records
// and results of the declared kinds and sizes, progress that never passes its total, nothing
// after send_complete. A broken invariant prints one line and aborts (a fuzzer crash). Writes
// past a device's write limit are refused with kOutOfRange, as the host refuses them. One
// FakeCallTable at a time (the table's entries are plain functions). Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "abi/call_table.h"
#include "abi/chain_config.h"
#include "abi/image_format.h"
#include "vmm/transport/request_server.h"

namespace instar::ops::testing {

// An attached file. Its bytes are held up to `bytes.size()`; past that, up to `size`, it reads
// as zeros (a sparse tail, so set_output_size to terabytes costs nothing).
struct FakeDevice {
  std::vector<uint8_t> bytes;
  uint64_t size = 0;
  bool writable = false;
  uint64_t write_limit = 0;  // bytes; writes must end at or below it
  abi::DeviceRole role = abi::DeviceRole::kImage;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  uint64_t virtual_size = 0;
  uint32_t cluster_size = 0;

  static FakeDevice Of(std::vector<uint8_t> contents);
  // The whole file (the sparse tail too); only for files below kMaxHeldBytes.
  std::vector<uint8_t> Contents() const;
};

// A write that would make a device hold more than this fails with kIoError, as a full disk
// would; it keeps a fuzzer's memory bounded.
inline constexpr uint64_t kMaxHeldBytes = 64u << 20;

// What the operation sent.
struct FakeReport {
  std::optional<int32_t> completed;
  std::optional<std::pair<uint32_t, uint64_t>> error;  // the first send_error
  std::vector<uint8_t> result;                          // the typed result's bytes
  std::vector<vmm::Record> records;                     // send_record, in order
  std::vector<uint8_t> record_buffer;                   // send_records, concatenated
  uint64_t writes = 0;
  uint64_t refused_writes = 0;
  uint64_t flushes = 0;
};

class FakeCallTable {
 public:
  // `config`: the operation config's bytes (at most one page). `expected`: the result and
  // record kinds the host would accept from this operation.
  FakeCallTable(std::span<const uint8_t> config, std::vector<FakeDevice> inputs,
                std::optional<FakeDevice> output, vmm::ExpectedResult expected);
  ~FakeCallTable();
  FakeCallTable(const FakeCallTable&) = delete;
  FakeCallTable& operator=(const FakeCallTable&) = delete;

  const abi::CallTable* table() const { return &table_; }
  const FakeReport& report() const { return report_; }
  const std::vector<FakeDevice>& inputs() const { return inputs_; }
  const std::optional<FakeDevice>& output() const { return output_; }

  // Asserts how the run ended: completed exactly once with 0 or 1, the same value the
  // operation's function returned, with an error code exactly when it failed.
  void ExpectFinished(int returned) const;

 private:
  static FakeCallTable& Current();
  FakeDevice* DeviceAt(uint32_t device);
  void ExpectRunning(const char* entry) const;
  int32_t Read(uint32_t device, uint64_t sector, uint32_t count, void* buffer);
  int32_t Write(uint32_t device, uint64_t sector, uint32_t count, const void* buffer);
  int32_t SendResult(uint32_t magic, const void* result, uint32_t size);

  static uint32_t GetInputDeviceCount();
  static int32_t ReadInputSector(uint32_t device, uint64_t sector, uint32_t count, void* buffer);
  static int32_t WriteInputSector(uint32_t device, uint64_t sector, uint32_t count,
                                  const void* buffer);
  static uint64_t GetInputCapacity(uint32_t device);
  static uint32_t GetInputSectorSize(uint32_t device);
  static int32_t ReadOutputSector(uint64_t sector, uint32_t count, void* buffer);
  static int32_t WriteOutputSector(uint64_t sector, uint32_t count, const void* buffer);
  static uint64_t GetOutputCapacity();
  static uint32_t GetOutputSectorSize();
  static const void* GetOperationConfig(uint32_t* size);
  static const abi::ChainConfig* GetChainConfig();
  static void DebugPrint(const char* text, uint32_t length);
  static void SendProgress(uint64_t done, uint64_t total);
  static void SendError(uint32_t code, uint64_t detail);
  static void SendComplete(int32_t status);
  static int32_t SendInfoResult(const abi::InfoResult* result);
  static int32_t SendRecord(uint32_t magic, const void* record, uint32_t size);
  static int32_t SetOutputSize(uint64_t bytes);
  static int32_t SendCheckResult(const abi::CheckResult* result);
  static int32_t SendResizeResult(const abi::ResizeResult* result);
  static int32_t SendRecords(const void* records, uint32_t length);
  static int32_t SendRebaseResult(const abi::RebaseResult* result);
  static int32_t SendCommitResult(const abi::CommitResult* result);
  static int32_t Flush(uint32_t device);
  static int32_t SetInputSize(uint32_t device, uint64_t bytes);

  abi::CallTable table_{};
  alignas(16) uint8_t config_[4096] = {};
  abi::ChainConfig chain_{};
  std::vector<FakeDevice> inputs_;
  std::vector<uint64_t> input_open_sizes_;  // an input never becomes shorter
  std::optional<FakeDevice> output_;
  vmm::ExpectedResult expected_;
  std::vector<uint32_t> record_counts_;
  FakeReport report_;
};

// Prints "fake call table: WHAT" and aborts.
[[noreturn]] void Violation(const std::string& what);

}  // namespace instar::ops::testing
