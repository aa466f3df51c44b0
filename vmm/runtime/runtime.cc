// The guest runtime blob, loaded at RUNTIME_LOAD_ADDR; the guest starts here at CPL3. It fills
// the call table, calls the operation's entry, and turns every call-table entry that needs
// the host into one request descriptor plus one doorbell ring (abi/transport.h).
// Built twice: the KVM runtime rings with a store to the doorbell page (an MMIO exit); the
// process runtime (INSTAR_RUNTIME_PIPE_DOORBELL) writes to the doorbell pipe and reads the
// reply pipe, the only system calls its seccomp filter allows.
// Freestanding; no allocation; never blocks except in the doorbell itself.
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/guest_image.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "abi/status.h"
#include "abi/transport.h"
#include "crates/freestanding/guest_image.h"

namespace {

using instar::abi::CallStatus;
using instar::abi::CallTable;
using instar::abi::Request;
using instar::abi::RequestKind;

// A function, not a global: a pointer constant made with reinterpret_cast would need dynamic
// initialisation, which a loader-less guest never runs.
Request* TransportRequest() { return reinterpret_cast<Request*>(instar::abi::kTransport.base); }

#if defined(INSTAR_RUNTIME_PIPE_DOORBELL)
// One round trip: write a word to the doorbell pipe, block reading the reply. The host has
// served the request when the reply arrives.
long RawSyscall3(long number, long a, long b, long c) {
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(number), "D"(a), "S"(b), "d"(c)
               : "rcx", "r11", "memory");
  return ret;
}

void RingDoorbell() {
  uint64_t word = 1;
  constexpr long kWrite = 1, kRead = 0;
  RawSyscall3(kWrite, instar::abi::kProcessDoorbellFd, reinterpret_cast<long>(&word), 8);
  RawSyscall3(kRead, instar::abi::kProcessReplyFd, reinterpret_cast<long>(&word), 8);
}
#else
// One exit: the store traps to the host, which has served the request by the time it retires.
// The clobber keeps the compiler from caching descriptor fields across it.
void RingDoorbell() {
  asm volatile("movq $1, (%0)" : : "r"(instar::abi::kDoorbell.base) : "memory");
}
#endif

Request* Begin(RequestKind kind) {
  Request* r = TransportRequest();
  *r = Request{};
  r->magic = instar::abi::kRequestMagic;
  r->kind = static_cast<uint32_t>(kind);
  r->status = static_cast<int32_t>(CallStatus::kBadRequest);
  return r;
}

int32_t Submit(Request* r) {
  RingDoorbell();
  return r->status;
}

[[noreturn]] void Stop(RequestKind kind, uint64_t code) {
  Request* r = Begin(kind);
  r->arg0 = code;
  for (;;) Submit(r);  // the host never resumes after a stop request
}

int32_t Sectors(RequestKind kind, uint32_t device, uint64_t sector, uint32_t count,
                const void* buffer) {
  Request* r = Begin(kind);
  r->device = device;
  r->sector = sector;
  r->count = count;
  r->buffer = reinterpret_cast<uint64_t>(buffer);
  return Submit(r);
}

uint64_t Query(RequestKind kind, uint32_t device) {
  Request* r = Begin(kind);
  r->device = device;
  return Submit(r) == 0 ? r->value : 0;
}

uint32_t GetInputDeviceCount() {
  return static_cast<uint32_t>(Query(RequestKind::kDeviceCount, 0));
}
int32_t ReadInputSector(uint32_t device, uint64_t sector, uint32_t count, void* buffer) {
  return Sectors(RequestKind::kReadSectors, device, sector, count, buffer);
}
int32_t WriteInputSector(uint32_t device, uint64_t sector, uint32_t count, const void* buffer) {
  return Sectors(RequestKind::kWriteSectors, device, sector, count, buffer);
}
uint64_t GetInputCapacity(uint32_t device) { return Query(RequestKind::kDeviceCapacity, device); }
uint32_t GetInputSectorSize(uint32_t device) {
  return static_cast<uint32_t>(Query(RequestKind::kSectorSize, device));
}
int32_t ReadOutputSector(uint64_t sector, uint32_t count, void* buffer) {
  return Sectors(RequestKind::kReadSectors, instar::abi::kOutputDevice, sector, count, buffer);
}
int32_t WriteOutputSector(uint64_t sector, uint32_t count, const void* buffer) {
  return Sectors(RequestKind::kWriteSectors, instar::abi::kOutputDevice, sector, count, buffer);
}
uint64_t GetOutputCapacity() {
  return Query(RequestKind::kDeviceCapacity, instar::abi::kOutputDevice);
}
uint32_t GetOutputSectorSize() {
  return static_cast<uint32_t>(Query(RequestKind::kSectorSize, instar::abi::kOutputDevice));
}
const void* GetOperationConfig(uint32_t* size) {
  if (size != nullptr) *size = static_cast<uint32_t>(instar::abi::kOperationConfig.size);
  return reinterpret_cast<const void*>(instar::abi::kOperationConfigAddr);
}
const instar::abi::ChainConfig* GetChainConfig() {
  return reinterpret_cast<const instar::abi::ChainConfig*>(instar::abi::kChainConfigAddr);
}
void DebugPrint(const char* text, uint32_t length) {
  Request* r = Begin(RequestKind::kDebugPrint);
  r->buffer = reinterpret_cast<uint64_t>(text);
  r->length = length;
  Submit(r);
}
void SendProgress(uint64_t done, uint64_t total) {
  Request* r = Begin(RequestKind::kProgress);
  r->arg0 = done;
  r->arg1 = total;
  Submit(r);
}
void SendError(uint32_t code, uint64_t detail) {
  Request* r = Begin(RequestKind::kError);
  r->arg0 = code;
  r->arg1 = detail;
  Submit(r);
}
void SendComplete(int32_t status) {
  Stop(RequestKind::kComplete, static_cast<uint64_t>(static_cast<int64_t>(status)));
}
int32_t SendResult(uint32_t magic, const void* result, uint64_t size) {
  Request* r = Begin(RequestKind::kResult);
  r->arg0 = magic;
  r->buffer = reinterpret_cast<uint64_t>(result);
  r->length = size;
  return Submit(r);
}
int32_t SendInfoResult(const instar::abi::InfoResult* result) {
  return SendResult(instar::abi::kInfoResultMagic, result, sizeof(*result));
}
int32_t SendCheckResult(const instar::abi::CheckResult* result) {
  return SendResult(instar::abi::kCheckResultMagic, result, sizeof(*result));
}
int32_t SendResizeResult(const instar::abi::ResizeResult* result) {
  return SendResult(instar::abi::kResizeResultMagic, result, sizeof(*result));
}
int32_t SendRebaseResult(const instar::abi::RebaseResult* result) {
  return SendResult(instar::abi::kRebaseResultMagic, result, sizeof(*result));
}
int32_t SendCommitResult(const instar::abi::CommitResult* result) {
  return SendResult(instar::abi::kCommitResultMagic, result, sizeof(*result));
}
int32_t SendRecord(uint32_t magic, const void* record, uint32_t size) {
  Request* r = Begin(RequestKind::kRecord);
  r->arg0 = magic;
  r->buffer = reinterpret_cast<uint64_t>(record);
  r->length = size;
  return Submit(r);
}
int32_t SetOutputSize(uint64_t bytes) {
  Request* r = Begin(RequestKind::kSetSize);
  r->device = instar::abi::kOutputDevice;
  r->arg0 = bytes;
  return Submit(r);
}

int32_t SetInputSize(uint32_t device, uint64_t bytes) {
  Request* r = Begin(RequestKind::kSetSize);
  r->device = device;
  r->arg0 = bytes;
  return Submit(r);
}

int32_t Flush(uint32_t device) {
  Request* r = Begin(RequestKind::kFlush);
  r->device = device;
  return Submit(r);
}

int32_t SendRecords(const void* records, uint32_t length) {
  Request* r = Begin(RequestKind::kRecords);
  r->buffer = reinterpret_cast<uint64_t>(records);
  r->length = length;
  return Submit(r);
}

}  // namespace

extern "C" [[noreturn]] __attribute__((section(".text.instar_entry"))) void instar_entry() {
  auto* table = reinterpret_cast<CallTable*>(instar::abi::kCallTableAddr);
  table->magic = instar::abi::kCallTableMagic;
  table->version = instar::abi::kCallTableVersion;
  table->size = sizeof(CallTable);
  table->get_input_device_count = GetInputDeviceCount;
  table->read_input_sector = ReadInputSector;
  table->write_input_sector = WriteInputSector;
  table->get_input_capacity = GetInputCapacity;
  table->get_input_sector_size = GetInputSectorSize;
  table->read_output_sector = ReadOutputSector;
  table->write_output_sector = WriteOutputSector;
  table->get_output_capacity = GetOutputCapacity;
  table->get_output_sector_size = GetOutputSectorSize;
  table->get_operation_config = GetOperationConfig;
  table->get_chain_config = GetChainConfig;
  table->debug_print = DebugPrint;
  table->send_progress = SendProgress;
  table->send_error = SendError;
  table->send_complete = SendComplete;
  table->send_info_result = SendInfoResult;
  table->send_record = SendRecord;
  table->set_output_size = SetOutputSize;
  table->send_check_result = SendCheckResult;
  table->send_resize_result = SendResizeResult;
  table->send_records = SendRecords;
  table->send_rebase_result = SendRebaseResult;
  table->send_commit_result = SendCommitResult;
  table->flush = Flush;
  table->set_input_size = SetInputSize;

  // The host verified the operation's header before loading it.
  const auto* op =
      reinterpret_cast<const instar::abi::GuestImageHeader*>(instar::abi::kOperationLoadAddr);
  using Entry = int (*)(const CallTable*);
  const int status = reinterpret_cast<Entry>(op->entry)(table);
  Stop(RequestKind::kOperationReturned, static_cast<uint64_t>(static_cast<int64_t>(status)));
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kRuntime, instar::abi::kRuntime.base,
                   instar_entry);
