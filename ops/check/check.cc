// The check operation: reads (and with a repair mode, writes) input device 0 through the call
// table, probes or takes its format, and runs qemu-img check's logic from crates/check. The
// findings stream to the host in batches of records; the counts go back in a CheckResult.
// Everything read is hostile; all work is bounded by the file size.
#include "ops/check/check.h"

#include <stdint.h>

#include "abi/call_table.h"
#include "abi/check.h"
#include "abi/image_format.h"
#include "crates/base/arena.h"
#include "crates/base/bytes.h"
#include "crates/base/checked.h"
#include "crates/base/result.h"
#include "crates/check/finding_sink.h"
#include "crates/check/image_access.h"
#include "crates/check/qcow2_check.h"
#include "crates/check/vmdk_check.h"
#include "crates/probe/probe.h"
#include "ops/common/device_io.h"
#include "ops/common/finish_operation.h"

namespace {

using instar::abi::CheckError;
using instar::abi::ImageFormat;
using instar::base::Fail;

using CheckStatus = instar::base::Status<CheckError>;

constexpr uint64_t kSector = 512;

instar::abi::CheckResult g_result;
instar::abi::CheckFindingBatch g_batch;

// Every call-table request is a VM exit, which costs far more than copying a few hundred
// KiB: small reads (L2 tables and refcount blocks of small-cluster images) and larger ones
// that continue the previous read (a large L1 table read chunk by chunk, adjacent L2 tables)
// are served from a read-ahead window, which writes keep coherent.
constexpr uint64_t kReadAheadBytes = 1024 * 1024;
constexpr uint64_t kReadAheadMaxRequest = 16 * 1024;
constexpr uint64_t kReadAheadMaxSequential = 128 * 1024;

struct Io {
  instar::ops::DeviceIo* device;
  uint8_t* window = nullptr;  // kReadAheadBytes
  uint64_t window_offset = 0;
  uint64_t window_bytes = 0;  // 0: empty
  uint64_t last_read_end = UINT64_MAX;
};

// Reads past the end of the file return zeros (qemu's file driver does the same).
bool ReadDevice(Io& io, uint64_t offset, uint64_t length, uint8_t* out) {
  const uint64_t readable = instar::base::DivRoundUp(io.device->size(), kSector) * kSector;
  uint64_t inside = 0;
  if (offset < readable) inside = readable - offset < length ? readable - offset : length;
  if (inside != 0 && !io.device->Read(offset, inside, out).ok()) return false;
  if (inside < length) __builtin_memset(out + inside, 0, length - inside);
  return true;
}

bool ReadImage(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  Io& io = *static_cast<Io*>(context);
  const bool sequential = offset == io.last_read_end && length <= kReadAheadMaxSequential;
  io.last_read_end = offset + length;
  if (io.window == nullptr || (length > kReadAheadMaxRequest && !sequential)) {
    return ReadDevice(io, offset, length, out);
  }
  const bool hit = io.window_bytes != 0 && offset >= io.window_offset &&
                   offset - io.window_offset <= io.window_bytes - length &&
                   length <= io.window_bytes;
  if (!hit) {
    io.window_bytes = 0;
    const uint64_t start = offset & ~(kSector - 1);
    if (!ReadDevice(io, start, kReadAheadBytes, io.window)) return false;
    io.window_offset = start;
    io.window_bytes = kReadAheadBytes;
  }
  __builtin_memcpy(out, io.window + (offset - io.window_offset), length);
  return true;
}

bool WriteImage(void* context, uint64_t offset, uint64_t length, const uint8_t* in) {
  Io& io = *static_cast<Io*>(context);
  if (io.window_bytes != 0 && offset < io.window_offset + io.window_bytes &&
      io.window_offset < offset + length) {
    io.window_bytes = 0;
  }
  return io.device->Write(offset, length, in).ok();
}

uint64_t ImageSize(void* context) { return static_cast<Io*>(context)->device->size(); }

bool FlushImage(void* context) { return static_cast<Io*>(context)->device->Flush().ok(); }

class RecordSink {
 public:
  explicit RecordSink(const instar::abi::CallTable* table) : table_(table) {
    g_batch.magic = instar::abi::kCheckFindingBatchMagic;
  }

  instar::check::FindingSink sink() {
    instar::check::FindingSink s;
    s.context = this;
    s.finding = [](void* c, const instar::abi::CheckFinding& f) {
      static_cast<RecordSink*>(c)->Add(f);
    };
    s.snapshot_finding = [](void* c, const instar::abi::CheckSnapshotFinding& f) {
      static_cast<RecordSink*>(c)->AddSnapshot(f);
    };
    return s;
  }

  void Flush() {
    if (g_batch.count == 0) return;
    if (batches_ < instar::abi::kMaxFindingBatches) {
      table_->send_record(g_batch.magic, &g_batch, sizeof g_batch);
      ++batches_;
    } else {
      truncated_ = true;
    }
    g_batch.count = 0;
  }
  bool truncated() const { return truncated_; }

 private:
  void Add(const instar::abi::CheckFinding& f) {
    g_batch.findings[g_batch.count++] = f;
    if (g_batch.count == instar::abi::kFindingsPerBatch) Flush();
  }
  void AddSnapshot(const instar::abi::CheckSnapshotFinding& f) {
    Flush();
    if (snapshot_findings_ < instar::abi::kMaxSnapshotFindings) {
      table_->send_record(f.magic, &f, sizeof f);
      ++snapshot_findings_;
    } else {
      truncated_ = true;
    }
  }

  const instar::abi::CallTable* table_;
  uint32_t batches_ = 0;
  uint32_t snapshot_findings_ = 0;
  bool truncated_ = false;
};

CheckStatus Check(const instar::abi::CallTable* table, instar::base::Arena& arena,
                  const instar::abi::CheckConfig& config, RecordSink& records) {
  instar::ops::DeviceIo device(table, 0);
  Io io_context{&device};
  instar::check::ImageAccess io;
  io.context = &io_context;
  io.read = ReadImage;
  io.write = WriteImage;
  io.size = ImageSize;
  io.flush = FlushImage;
  io_context.window = arena.Allocate(kReadAheadBytes, kSector);
  const auto repair = static_cast<instar::abi::CheckRepair>(config.repair);
  if (config.repair > static_cast<uint32_t>(instar::abi::CheckRepair::kAll)) {
    return Fail(CheckError::kBadConfig, config.repair);
  }

  ImageFormat format = static_cast<ImageFormat>(config.requested_format);
  if (format == ImageFormat::kAuto) {
    uint8_t head[instar::probe::kProbeBytes];
    const uint64_t n = device.size() < sizeof head ? device.size() : sizeof head;
    if (!ReadImage(&io_context, 0, n, head)) return Fail(CheckError::kIoError);
    const instar::probe::Format probed = instar::probe::ProbeFormat(instar::base::ByteView(head, n));
    switch (probed) {
      case instar::probe::Format::kRaw: format = ImageFormat::kRaw; break;
      case instar::probe::Format::kQcow2: format = ImageFormat::kQcow2; break;
      case instar::probe::Format::kVmdk: format = ImageFormat::kVmdk; break;
      // Formats qemu opens but has no check for: nothing of them needs parsing to say so.
      case instar::probe::Format::kQcow1:
      case instar::probe::Format::kVpc:
      case instar::probe::Format::kCloop:
      case instar::probe::Format::kBochs:
        return Fail(CheckError::kNotSupportedByFormat, static_cast<uint64_t>(probed));
      default: return Fail(CheckError::kUnsupportedFormat, static_cast<uint64_t>(probed));
    }
  }
  g_result.format = static_cast<uint32_t>(format);
  const instar::check::FindingSink sink = records.sink();
  switch (format) {
    case ImageFormat::kQcow2: {
      instar::check::CheckOptions options;
      options.repair = repair;
      options.max_clusters_per_pass = config.max_clusters_per_pass;
      options.backing_checked = (config.flags & instar::abi::kCheckBackingChecked) != 0;
      return instar::check::CheckQcow2(io, sink, arena, options, &g_result);
    }
    case ImageFormat::kVmdk:
      return instar::check::CheckVmdk(io, sink, arena, repair,
                                      (config.flags & instar::abi::kCheckBackingChecked) != 0,
                                      &g_result);
    case ImageFormat::kRaw:
      return Fail(CheckError::kNotSupportedByFormat, static_cast<uint64_t>(instar::probe::Format::kRaw));
    case ImageFormat::kAuto: break;
  }
  return Fail(CheckError::kBadConfig, config.requested_format);
}

}  // namespace

int instar::ops::RunCheck(const instar::abi::CallTable* table, instar::base::Arena& scratch) {
  if (!instar::abi::CallTableUsable(table)) return 1;
  const auto* config = static_cast<const instar::abi::CheckConfig*>(
      table->get_operation_config(nullptr));
  g_result = {};
  g_result.magic = instar::abi::kCheckResultMagic;
  g_batch = {};
  RecordSink records(table);
  CheckStatus status = config->magic == instar::abi::kCheckConfigMagic
                           ? Check(table, scratch, *config, records)
                           : CheckStatus(Fail(CheckError::kBadConfig));
  records.Flush();
  if (records.truncated()) g_result.flags |= instar::abi::kCheckResultFindingsTruncated;
  g_result.magic = instar::abi::kCheckResultMagic;
  return FinishOperation(table, table->send_check_result, status.ok() ? &g_result : nullptr,
                         status);
}
