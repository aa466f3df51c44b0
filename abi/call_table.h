// The call table at CALL_TABLE_ADDR: the only interface an operation has to the world. The
// runtime blob fills it; every entry that needs the host becomes one doorbell request
// (abi/transport.h). Fields are only ever appended; `version` counts them. Header-only,
// freestanding-safe; the function pointers are guest addresses and the host never calls them.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/chain_config.h"
#include "abi/check.h"
#include "abi/commit.h"
#include "abi/info.h"
#include "abi/rebase.h"
#include "abi/resize.h"
#include "abi/memory_map.h"

namespace instar::abi {

inline constexpr uint32_t kCallTableMagic = 0x4C435349;  // "ISCL"
inline constexpr uint32_t kCallTableVersion = 6;

// Every sector-level entry moves `count` sectors between the device and `buffer`; one call is one
// host exit, so callers batch whole clusters. Return values are CallStatus.
struct CallTable {
  uint32_t magic;
  uint32_t version;
  uint32_t size;  // sizeof(CallTable) as built by the runtime
  uint32_t reserved;

  uint32_t (*get_input_device_count)();
  int32_t (*read_input_sector)(uint32_t device, uint64_t sector, uint32_t count, void* buffer);
  int32_t (*write_input_sector)(uint32_t device, uint64_t sector, uint32_t count,
                                const void* buffer);
  uint64_t (*get_input_capacity)(uint32_t device);  // bytes
  uint32_t (*get_input_sector_size)(uint32_t device);
  int32_t (*read_output_sector)(uint64_t sector, uint32_t count, void* buffer);
  int32_t (*write_output_sector)(uint64_t sector, uint32_t count, const void* buffer);
  uint64_t (*get_output_capacity)();  // bytes
  uint32_t (*get_output_sector_size)();
  const void* (*get_operation_config)(uint32_t* size);
  const ChainConfig* (*get_chain_config)();
  void (*debug_print)(const char* text, uint32_t length);
  void (*send_progress)(uint64_t done, uint64_t total);
  void (*send_error)(uint32_t code, uint64_t detail);
  void (*send_complete)(int32_t status);  // does not return
  int32_t (*send_info_result)(const InfoResult* result);
  // Version 2.
  // One element of a list the operation reports (snapshots, check findings, ...): `magic`
  // names the record type, which the host accepts only when the operation declared it, with
  // exactly its size, and up to its count cap.
  int32_t (*send_record)(uint32_t magic, const void* record, uint32_t size);
  // Truncates or extends the output device to `bytes` (only below its write limit).
  int32_t (*set_output_size)(uint64_t bytes);
  int32_t (*send_check_result)(const CheckResult* result);
  int32_t (*send_resize_result)(const ResizeResult* result);
  // Version 3. A buffer of variable-length records (abi/info_records.h) of at most
  // kMaxInfoRecordBytes; may be called several times (the host appends, up to
  // kMaxInfoRecordTotalBytes), always before the typed result.
  int32_t (*send_records)(const void* records, uint32_t length);
  // Version 4.
  int32_t (*send_rebase_result)(const RebaseResult* result);
  int32_t (*send_commit_result)(const CommitResult* result);
  // Version 5. Makes every write to `device` so far durable before any later one (the host's
  // fdatasync). Writing operations call it where qemu flushes: before a step that depends on
  // earlier ones, e.g. pointers after the clusters and refcounts they need.
  int32_t (*flush)(uint32_t device);
  // Version 6. Sets the length of input `device` to `bytes` (a kSetSize request), which the
  // host allows only on a writable device, from its size when opened up to its write limit:
  // the guest writes whole sectors, and a repair that ends inside the file's last sector
  // makes the file end at its last byte, as qemu's does.
  int32_t (*set_input_size)(uint32_t device, uint64_t bytes);
};
static_assert(offsetof(CallTable, get_input_device_count) == 16);
static_assert(offsetof(CallTable, read_input_sector) == 24);
static_assert(offsetof(CallTable, write_input_sector) == 32);
static_assert(offsetof(CallTable, get_input_capacity) == 40);
static_assert(offsetof(CallTable, get_input_sector_size) == 48);
static_assert(offsetof(CallTable, read_output_sector) == 56);
static_assert(offsetof(CallTable, write_output_sector) == 64);
static_assert(offsetof(CallTable, get_output_capacity) == 72);
static_assert(offsetof(CallTable, get_output_sector_size) == 80);
static_assert(offsetof(CallTable, get_operation_config) == 88);
static_assert(offsetof(CallTable, get_chain_config) == 96);
static_assert(offsetof(CallTable, debug_print) == 104);
static_assert(offsetof(CallTable, send_progress) == 112);
static_assert(offsetof(CallTable, send_error) == 120);
static_assert(offsetof(CallTable, send_complete) == 128);
static_assert(offsetof(CallTable, send_info_result) == 136);
static_assert(offsetof(CallTable, send_record) == 144);
static_assert(offsetof(CallTable, set_output_size) == 152);
static_assert(offsetof(CallTable, send_check_result) == 160);
static_assert(offsetof(CallTable, send_resize_result) == 168);
static_assert(offsetof(CallTable, send_records) == 176);
static_assert(offsetof(CallTable, send_rebase_result) == 184);
static_assert(offsetof(CallTable, send_commit_result) == 192);
static_assert(offsetof(CallTable, flush) == 200);
static_assert(offsetof(CallTable, set_input_size) == 208);
static_assert(sizeof(CallTable) == 216);
static_assert(sizeof(CallTable) <= kCallTable.size);

// True when `table` is a call table this operation can use: right magic, a version at least
// as new as the one it was built against, and a size that covers every field it knows.
inline bool CallTableUsable(const CallTable* table) {
  return table != nullptr && table->magic == kCallTableMagic &&
         table->version >= kCallTableVersion && table->size >= sizeof(CallTable);
}

}  // namespace instar::abi
