// Parses the records an info guest sent (abi/info_records.h) into host types, re-checking
// every size, count and string: the bytes come from a hostile guest. Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/info.h"
#include "abi/info_records.h"
#include "vmm/base/status.h"

namespace instar::vmm {

struct SnapshotInfo {
  std::string id;
  std::string name;
  uint64_t vm_state_size = 0;
  uint64_t vm_clock_nsec = 0;
  std::optional<uint64_t> icount;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
};

struct BitmapInfo {
  std::string name;
  bool in_use = false;
  bool auto_ = false;
  uint32_t granularity_bits = 0;
};

struct VmdkExtentInfo {
  uint64_t sectors = 0;
  bool sparse = false;
  bool compressed = false;
  uint32_t cluster_size = 0;  // 0 when flat
  std::string type;           // the descriptor's type word; empty for an embedded descriptor
  std::string filename;       // as the descriptor names it; empty for the image itself
};

struct LuksSlotInfo {
  bool active = false;
  uint32_t iterations = 0;
  uint64_t key_offset = 0;  // bytes
  uint32_t stripes = 0;
};

struct LuksInfo {
  std::string cipher_name;
  std::string cipher_mode;
  std::string hash_spec;
  std::string uuid;
  uint32_t key_bytes = 0;
  uint64_t payload_offset = 0;  // bytes
  uint32_t master_key_iterations = 0;
  std::vector<LuksSlotInfo> slots;
};

struct FeatureNameInfo {
  uint32_t type = 0;
  uint32_t bit = 0;
  std::string name;
};

struct InfoRecords {
  std::optional<std::string> data_file;
  std::vector<SnapshotInfo> snapshots;
  std::vector<BitmapInfo> bitmaps;
  std::optional<std::string> vmdk_create_type;
  std::vector<VmdkExtentInfo> extents;
  std::optional<LuksInfo> luks;
  std::vector<FeatureNameInfo> feature_names;
  std::optional<uint64_t> error_value;  // a second number for an error's message
  std::optional<std::string> error_text;  // image text an error's message quotes
};

// A LUKS cipher mode ("xts-plain64", "cbc-essiv:sha256") split into its parts.
struct LuksMode {
  std::string mode;
  std::string ivgen;
  std::string ivgen_hash;  // empty when there is none
};
LuksMode SplitLuksMode(const LuksInfo& luks);

// The key size of one cipher key in bytes (an XTS key holds two).
uint32_t LuksCipherKeyBytes(const LuksInfo& luks);

// Parses `bytes`. Texts end at their first NUL, as qemu's C strings do; other bytes are kept
// for the printers (JSON escapes them).
StatusOr<InfoRecords> ParseInfoRecords(const std::vector<uint8_t>& bytes);

// Checks the record counts against the result's own counts.
Status CheckRecordCounts(const InfoRecords& records, const abi::InfoResult& result);

}  // namespace instar::vmm
