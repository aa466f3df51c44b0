#include "ops/testing/fake_call_table.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "abi/info_records.h"
#include "abi/status.h"
#include "abi/transport.h"

namespace instar::ops::testing {
namespace {

constexpr uint64_t kSector = 512;
FakeCallTable* g_current = nullptr;

int32_t Status(abi::CallStatus s) { return static_cast<int32_t>(s); }

}  // namespace

void Violation(const std::string& what) {
  std::fprintf(stderr, "fake call table: %s\n", what.c_str());
  std::abort();
}

FakeDevice FakeDevice::Of(std::vector<uint8_t> contents) {
  FakeDevice d;
  d.size = contents.size();
  d.bytes = std::move(contents);
  return d;
}

std::vector<uint8_t> FakeDevice::Contents() const {
  if (size > kMaxHeldBytes) Violation("Contents() of a device larger than kMaxHeldBytes");
  std::vector<uint8_t> all(bytes.begin(), bytes.begin() + std::min<uint64_t>(bytes.size(), size));
  all.resize(size, 0);
  return all;
}

FakeCallTable::FakeCallTable(std::span<const uint8_t> config, std::vector<FakeDevice> inputs,
                             std::optional<FakeDevice> output, vmm::ExpectedResult expected)
    : inputs_(std::move(inputs)), output_(std::move(output)), expected_(std::move(expected)) {
  if (g_current != nullptr) Violation("two FakeCallTables at once");
  if (config.size() > sizeof config_ || inputs_.size() > abi::kMaxInputDevices) {
    Violation("fake set-up: config or device count too large");
  }
  g_current = this;
  if (!config.empty()) std::memcpy(config_, config.data(), config.size());
  record_counts_.assign(expected_.records.size(), 0);

  chain_.magic = abi::kChainConfigMagic;
  auto describe = [](const FakeDevice& d) {
    abi::ChainDevice cd{};
    cd.role = static_cast<uint32_t>(d.role);
    cd.format = static_cast<uint32_t>(d.format);
    cd.flags = d.writable ? abi::kDeviceWritable : 0;
    cd.sector_size = kSector;
    cd.capacity = d.size;
    cd.virtual_size = d.virtual_size;
    cd.cluster_size = d.cluster_size;
    return cd;
  };
  for (const FakeDevice& d : inputs_) chain_.input[chain_.device_count++] = describe(d);
  if (output_) {
    chain_.has_output = 1;
    chain_.output = describe(*output_);
  }

  table_.magic = abi::kCallTableMagic;
  table_.version = abi::kCallTableVersion;
  table_.size = sizeof table_;
  table_.get_input_device_count = GetInputDeviceCount;
  table_.read_input_sector = ReadInputSector;
  table_.write_input_sector = WriteInputSector;
  table_.get_input_capacity = GetInputCapacity;
  table_.get_input_sector_size = GetInputSectorSize;
  table_.read_output_sector = ReadOutputSector;
  table_.write_output_sector = WriteOutputSector;
  table_.get_output_capacity = GetOutputCapacity;
  table_.get_output_sector_size = GetOutputSectorSize;
  table_.get_operation_config = GetOperationConfig;
  table_.get_chain_config = GetChainConfig;
  table_.debug_print = DebugPrint;
  table_.send_progress = SendProgress;
  table_.send_error = SendError;
  table_.send_complete = SendComplete;
  table_.send_info_result = SendInfoResult;
  table_.send_record = SendRecord;
  table_.set_output_size = SetOutputSize;
  table_.send_check_result = SendCheckResult;
  table_.send_resize_result = SendResizeResult;
  table_.send_records = SendRecords;
  table_.send_rebase_result = SendRebaseResult;
  table_.send_commit_result = SendCommitResult;
  table_.flush = Flush;
  table_.set_input_size = SetInputSize;
  for (const FakeDevice& d : inputs_) input_open_sizes_.push_back(d.size);
}

FakeCallTable::~FakeCallTable() { g_current = nullptr; }

FakeCallTable& FakeCallTable::Current() {
  if (g_current == nullptr) Violation("call-table entry called with no FakeCallTable");
  return *g_current;
}

FakeDevice* FakeCallTable::DeviceAt(uint32_t device) {
  if (device == abi::kOutputDevice) return output_ ? &*output_ : nullptr;
  return device < inputs_.size() ? &inputs_[device] : nullptr;
}

void FakeCallTable::ExpectRunning(const char* entry) const {
  if (report_.completed) Violation(std::string(entry) + " after send_complete");
}

void FakeCallTable::ExpectFinished(int returned) const {
  if (!report_.completed) Violation("the operation returned without send_complete");
  const int32_t status = *report_.completed;
  if (status != 0 && status != 1) Violation("send_complete with a status other than 0 or 1");
  if (status != returned) Violation("the operation returned a status it did not complete with");
  if ((status == 1) != report_.error.has_value()) {
    Violation(status == 1 ? "failed without send_error" : "succeeded after send_error");
  }
}

// The request server's checks (vmm/transport/request_validation.cc): a request the host
// would refuse as malformed is an operation bug here.
int32_t FakeCallTable::Read(uint32_t device, uint64_t sector, uint32_t count, void* buffer) {
  ExpectRunning("a read");
  FakeDevice* d = DeviceAt(device);
  if (d == nullptr) Violation("read of a device that is not attached");
  if (count == 0 || count > abi::kMaxTransferBytes / kSector || buffer == nullptr) {
    Violation("read of " + std::to_string(count) + " sectors");
  }
  const uint64_t readable = (d->size + kSector - 1) / kSector * kSector;
  const uint64_t length = uint64_t{count} * kSector;
  if (sector > readable / kSector || length > readable - sector * kSector) {
    Violation("read of sectors [" + std::to_string(sector) + ", +" + std::to_string(count) +
              ") past the end of a " + std::to_string(d->size) + "-byte device");
  }
  const uint64_t offset = sector * kSector;
  auto* out = static_cast<uint8_t*>(buffer);
  const uint64_t held = offset < d->bytes.size() ? std::min(length, d->bytes.size() - offset) : 0;
  if (held != 0) std::memcpy(out, d->bytes.data() + offset, held);
  std::memset(out + held, 0, length - held);
  return Status(abi::CallStatus::kOk);
}

int32_t FakeCallTable::Write(uint32_t device, uint64_t sector, uint32_t count,
                             const void* buffer) {
  ExpectRunning("a write");
  FakeDevice* d = DeviceAt(device);
  if (d == nullptr) Violation("write to a device that is not attached");
  if (!d->writable) Violation("write to a read-only device");
  if (count == 0 || count > abi::kMaxTransferBytes / kSector || buffer == nullptr) {
    Violation("write of " + std::to_string(count) + " sectors");
  }
  const uint64_t length = uint64_t{count} * kSector;
  if (sector > UINT64_MAX / kSector || sector * kSector > UINT64_MAX - length ||
      sector * kSector + length > d->write_limit) {
    ++report_.refused_writes;
    return Status(abi::CallStatus::kOutOfRange);
  }
  const uint64_t offset = sector * kSector;
  if (offset + length > kMaxHeldBytes) return Status(abi::CallStatus::kIoError);
  if (d->bytes.size() < offset + length) {
    // The sparse tail becomes held bytes (zeros up to the write).
    d->bytes.resize(offset + length, 0);
  }
  std::memcpy(d->bytes.data() + offset, buffer, length);
  d->size = std::max(d->size, offset + length);
  ++report_.writes;
  return Status(abi::CallStatus::kOk);
}

int32_t FakeCallTable::SendResult(uint32_t magic, const void* result, uint32_t size) {
  ExpectRunning("send_*_result");
  if (!report_.result.empty()) Violation("a second typed result");
  if (magic != expected_.magic || size != expected_.size) {
    Violation("a typed result of another operation (magic " + std::to_string(magic) + ")");
  }
  const auto* bytes = static_cast<const uint8_t*>(result);
  report_.result.assign(bytes, bytes + size);
  return Status(abi::CallStatus::kOk);
}

uint32_t FakeCallTable::GetInputDeviceCount() {
  return static_cast<uint32_t>(Current().inputs_.size());
}
int32_t FakeCallTable::ReadInputSector(uint32_t device, uint64_t sector, uint32_t count,
                                       void* buffer) {
  if (device == abi::kOutputDevice) Violation("read_input_sector of the output device");
  return Current().Read(device, sector, count, buffer);
}
int32_t FakeCallTable::WriteInputSector(uint32_t device, uint64_t sector, uint32_t count,
                                        const void* buffer) {
  if (device == abi::kOutputDevice) Violation("write_input_sector of the output device");
  return Current().Write(device, sector, count, buffer);
}
uint64_t FakeCallTable::GetInputCapacity(uint32_t device) {
  const FakeDevice* d = device == abi::kOutputDevice ? nullptr : Current().DeviceAt(device);
  return d == nullptr ? 0 : d->size;
}
uint32_t FakeCallTable::GetInputSectorSize(uint32_t device) {
  const FakeDevice* d = device == abi::kOutputDevice ? nullptr : Current().DeviceAt(device);
  return d == nullptr ? 0 : static_cast<uint32_t>(kSector);
}
int32_t FakeCallTable::ReadOutputSector(uint64_t sector, uint32_t count, void* buffer) {
  return Current().Read(abi::kOutputDevice, sector, count, buffer);
}
int32_t FakeCallTable::WriteOutputSector(uint64_t sector, uint32_t count, const void* buffer) {
  return Current().Write(abi::kOutputDevice, sector, count, buffer);
}
uint64_t FakeCallTable::GetOutputCapacity() {
  const FakeDevice* d = Current().DeviceAt(abi::kOutputDevice);
  return d == nullptr ? 0 : d->size;
}
uint32_t FakeCallTable::GetOutputSectorSize() {
  return Current().DeviceAt(abi::kOutputDevice) == nullptr ? 0 : static_cast<uint32_t>(kSector);
}
const void* FakeCallTable::GetOperationConfig(uint32_t* size) {
  if (size != nullptr) *size = sizeof Current().config_;
  return Current().config_;
}
const abi::ChainConfig* FakeCallTable::GetChainConfig() { return &Current().chain_; }

void FakeCallTable::DebugPrint(const char* text, uint32_t length) {
  Current().ExpectRunning("debug_print");
  if (length > abi::kMaxDebugTextBytes || (length != 0 && text == nullptr)) {
    Violation("debug_print of " + std::to_string(length) + " bytes");
  }
}
void FakeCallTable::SendProgress(uint64_t done, uint64_t total) {
  Current().ExpectRunning("send_progress");
  if (done > total) {
    Violation("progress " + std::to_string(done) + " of " + std::to_string(total));
  }
}
void FakeCallTable::SendError(uint32_t code, uint64_t detail) {
  FakeCallTable& self = Current();
  self.ExpectRunning("send_error");
  if (!self.report_.error) self.report_.error = {code, detail};
}
void FakeCallTable::SendComplete(int32_t status) {
  FakeCallTable& self = Current();
  self.ExpectRunning("send_complete");
  self.report_.completed = status;
}
int32_t FakeCallTable::SendInfoResult(const abi::InfoResult* result) {
  return Current().SendResult(result->magic, result, sizeof *result);
}
int32_t FakeCallTable::SendCheckResult(const abi::CheckResult* result) {
  return Current().SendResult(result->magic, result, sizeof *result);
}
int32_t FakeCallTable::SendResizeResult(const abi::ResizeResult* result) {
  return Current().SendResult(result->magic, result, sizeof *result);
}
int32_t FakeCallTable::SendRebaseResult(const abi::RebaseResult* result) {
  return Current().SendResult(result->magic, result, sizeof *result);
}
int32_t FakeCallTable::SendCommitResult(const abi::CommitResult* result) {
  return Current().SendResult(result->magic, result, sizeof *result);
}

int32_t FakeCallTable::SendRecord(uint32_t magic, const void* record, uint32_t size) {
  FakeCallTable& self = Current();
  self.ExpectRunning("send_record");
  for (size_t i = 0; i < self.expected_.records.size(); ++i) {
    const vmm::RecordSpec& spec = self.expected_.records[i];
    if (spec.magic != magic) continue;
    if (size != spec.size) Violation("a record of the wrong size");
    if (self.record_counts_[i] >= spec.max_count) Violation("records past their count cap");
    uint32_t stored = 0;
    std::memcpy(&stored, record, sizeof stored);
    if (stored != magic) Violation("a record whose magic is not the one it was sent as");
    ++self.record_counts_[i];
    const auto* bytes = static_cast<const uint8_t*>(record);
    self.report_.records.push_back({magic, std::vector<uint8_t>(bytes, bytes + size)});
    return Status(abi::CallStatus::kOk);
  }
  Violation("a record of a type the operation does not declare");
}

int32_t FakeCallTable::SetOutputSize(uint64_t bytes) {
  FakeCallTable& self = Current();
  self.ExpectRunning("set_output_size");
  FakeDevice* d = self.DeviceAt(abi::kOutputDevice);
  if (d == nullptr || !d->writable) Violation("set_output_size without a writable output");
  if (bytes > d->write_limit) {
    ++self.report_.refused_writes;
    return Status(abi::CallStatus::kOutOfRange);
  }
  d->size = bytes;
  if (d->bytes.size() > bytes) d->bytes.resize(bytes);
  ++self.report_.writes;
  return Status(abi::CallStatus::kOk);
}

int32_t FakeCallTable::Flush(uint32_t device) {
  FakeCallTable& self = Current();
  self.ExpectRunning("flush");
  const FakeDevice* d = self.DeviceAt(device);
  if (d == nullptr || !d->writable) Violation("flush of a device the operation cannot write");
  ++self.report_.flushes;
  return Status(abi::CallStatus::kOk);
}

int32_t FakeCallTable::SetInputSize(uint32_t device, uint64_t bytes) {
  FakeCallTable& self = Current();
  self.ExpectRunning("set_input_size");
  if (device == abi::kOutputDevice || device >= self.inputs_.size()) {
    Violation("set_input_size of a device that is not an input");
  }
  FakeDevice& d = self.inputs_[device];
  if (!d.writable) Violation("set_input_size of an input the operation cannot write");
  if (bytes < self.input_open_sizes_[device]) Violation("set_input_size below the input's size");
  if (bytes > d.write_limit) {
    ++self.report_.refused_writes;
    return Status(abi::CallStatus::kOutOfRange);
  }
  d.size = bytes;
  if (d.bytes.size() > bytes) d.bytes.resize(bytes);
  ++self.report_.writes;
  return Status(abi::CallStatus::kOk);
}

int32_t FakeCallTable::SendRecords(const void* records, uint32_t length) {
  FakeCallTable& self = Current();
  self.ExpectRunning("send_records");
  if (!self.report_.result.empty()) Violation("send_records after the typed result");
  if (length > abi::kMaxInfoRecordBytes) Violation("send_records past its per-call cap");
  // The host's total cap is a refusal the operation reports, not a bug.
  if (self.report_.record_buffer.size() + length > abi::kMaxInfoRecordTotalBytes) {
    return Status(abi::CallStatus::kBadResult);
  }
  const auto* bytes = static_cast<const uint8_t*>(records);
  self.report_.record_buffer.insert(self.report_.record_buffer.end(), bytes, bytes + length);
  return Status(abi::CallStatus::kOk);
}

}  // namespace instar::ops::testing
