#include "vmm/transport/request_server.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "vmm/transport/request_validation.h"

namespace instar::vmm {

std::string SanitizeGuestText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out += (u == '\n' || u == '\t' || (u >= 0x20 && u < 0x7F)) ? c : '?';
  }
  return out;
}

RequestServer::RequestServer(GuestRam ram, DeviceSet& devices, ExpectedResult expected,
                             ServerHooks hooks)
    : ram_(ram), devices_(devices), expected_(std::move(expected)), hooks_(std::move(hooks)),
      record_counts_(expected_.records.size(), 0) {
  for (const Device& d : devices_.inputs) {
    input_limits_.push_back(d.limits);
    input_open_sizes_.push_back(d.limits.size);
  }
}

Device* RequestServer::DeviceAt(uint32_t index) {
  if (index == abi::kOutputDevice) return devices_.output ? &*devices_.output : nullptr;
  return index < devices_.inputs.size() ? &devices_.inputs[index] : nullptr;
}

RequestServer::Next RequestServer::Serve() {
  ++report_.requests;
  // Copy the descriptor out first: everything below works on this copy.
  const auto request = ram_.Read<abi::Request>(abi::kTransport.base);
  uint64_t value = 0;
  Next next = Next::kResume;
  abi::CallStatus status = request.magic == abi::kRequestMagic
                               ? Handle(request, &value, &next)
                               : abi::CallStatus::kBadRequest;
  if (status != abi::CallStatus::kOk) ++report_.refused_requests;
  ram_.Write<int32_t>(abi::kTransport.base + offsetof(abi::Request, status),
                      static_cast<int32_t>(status));
  ram_.Write<uint64_t>(abi::kTransport.base + offsetof(abi::Request, value), value);
  return next;
}

abi::CallStatus RequestServer::DoIo(const abi::Request& request) {
  const DeviceLimits* output = devices_.output ? &devices_.output->limits : nullptr;
  ValidatedIo io;
  const abi::CallStatus status = ValidateIo(request, input_limits_, output, ram_, &io);
  if (status != abi::CallStatus::kOk) return status;
  Device* dev = DeviceAt(request.device);
  if (io.write) {
    if (hooks_.fail_writes_after && writes_done_ >= *hooks_.fail_writes_after) {
      return abi::CallStatus::kIoError;
    }
    for (uint64_t done = 0; done < io.length;) {
      const ssize_t n = ::pwrite(dev->fd.get(), io.buffer + done, io.length - done,
                                 static_cast<off_t>(io.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return abi::CallStatus::kIoError;
      done += static_cast<uint64_t>(n);
    }
    ++writes_done_;
    report_.bytes_written += io.length;
    if (io.offset + io.length > dev->limits.size) {
      dev->limits.size = io.offset + io.length;
      if (!io.output) input_limits_[io.device].size = dev->limits.size;
    }
    return abi::CallStatus::kOk;
  }
  uint64_t done = 0;
  while (done < io.length) {
    const ssize_t n = ::pread(dev->fd.get(), io.buffer + done, io.length - done,
                              static_cast<off_t>(io.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return abi::CallStatus::kIoError;
    if (n == 0) break;  // end of file: the rest of the last sector reads as zeros
    done += static_cast<uint64_t>(n);
  }
  std::memset(io.buffer + done, 0, io.length - done);
  report_.bytes_read += io.length;
  return abi::CallStatus::kOk;
}

abi::CallStatus RequestServer::DoRecord(const abi::Request& request) {
  for (size_t i = 0; i < expected_.records.size(); ++i) {
    const RecordSpec& spec = expected_.records[i];
    if (spec.magic != request.arg0) continue;
    if (request.length != spec.size || record_counts_[i] >= spec.max_count) {
      return abi::CallStatus::kBadResult;
    }
    const uint8_t* bytes = ram_.UserRange(request.buffer, request.length);
    if (bytes == nullptr) return abi::CallStatus::kBadBuffer;
    uint32_t magic;
    std::memcpy(&magic, bytes, sizeof magic);
    if (magic != spec.magic) return abi::CallStatus::kBadResult;
    ++record_counts_[i];
    report_.records.push_back({spec.magic, std::vector<uint8_t>(bytes, bytes + request.length)});
    return abi::CallStatus::kOk;
  }
  return abi::CallStatus::kBadResult;
}

abi::CallStatus RequestServer::DoSetSize(const abi::Request& request) {
  Device* dev = DeviceAt(request.device);
  if (dev == nullptr) return abi::CallStatus::kBadDevice;
  if (!dev->limits.writable) return abi::CallStatus::kReadOnly;
  if (request.arg0 > dev->limits.write_limit) return abi::CallStatus::kOutOfRange;
  if (request.device != abi::kOutputDevice && request.arg0 < input_open_sizes_[request.device]) {
    return abi::CallStatus::kOutOfRange;
  }
  if (hooks_.fail_writes_after && writes_done_ >= *hooks_.fail_writes_after) {
    return abi::CallStatus::kIoError;
  }
  if (::ftruncate(dev->fd.get(), static_cast<off_t>(request.arg0)) != 0) {
    return abi::CallStatus::kIoError;
  }
  ++writes_done_;
  dev->limits.size = request.arg0;
  if (request.device != abi::kOutputDevice) input_limits_[request.device].size = request.arg0;
  return abi::CallStatus::kOk;
}

abi::CallStatus RequestServer::DoFlush(const abi::Request& request) {
  const Device* dev = DeviceAt(request.device);
  if (dev == nullptr) return abi::CallStatus::kBadDevice;
  if (!dev->limits.writable) return abi::CallStatus::kReadOnly;
  if (!hooks_.durable_writes) return abi::CallStatus::kOk;
  if (!SyncDevice(*dev).ok()) return abi::CallStatus::kIoError;
  ++report_.flushes;
  return abi::CallStatus::kOk;
}

abi::CallStatus RequestServer::Handle(const abi::Request& request, uint64_t* value, Next* next) {
  const DeviceLimits* output = devices_.output ? &devices_.output->limits : nullptr;
  switch (static_cast<abi::RequestKind>(request.kind)) {
    case abi::RequestKind::kReadSectors:
    case abi::RequestKind::kWriteSectors:
      return DoIo(request);
    case abi::RequestKind::kDeviceCount:
      *value = devices_.inputs.size();
      return abi::CallStatus::kOk;
    case abi::RequestKind::kDeviceCapacity:
    case abi::RequestKind::kSectorSize: {
      const DeviceLimits* dev = FindDevice(request.device, input_limits_, output);
      if (dev == nullptr) return abi::CallStatus::kBadDevice;
      *value = request.kind == static_cast<uint32_t>(abi::RequestKind::kDeviceCapacity)
                   ? dev->size
                   : dev->sector_size;
      return abi::CallStatus::kOk;
    }
    case abi::RequestKind::kDebugPrint: {
      if (request.length > abi::kMaxDebugTextBytes) return abi::CallStatus::kTooLong;
      const uint8_t* text = ram_.UserRange(request.buffer, request.length);
      if (text == nullptr) return abi::CallStatus::kBadBuffer;
      const std::string clean =
          SanitizeGuestText({reinterpret_cast<const char*>(text), request.length});
      if (report_.debug_text.size() + clean.size() <= kMaxDebugTextTotal) {
        report_.debug_text += clean;
      }
      if (hooks_.on_debug_text) hooks_.on_debug_text(clean);
      return abi::CallStatus::kOk;
    }
    case abi::RequestKind::kProgress:
      if (request.arg0 > request.arg1) return abi::CallStatus::kBadRequest;
      if (hooks_.on_progress) hooks_.on_progress(request.arg0, request.arg1);
      return abi::CallStatus::kOk;
    case abi::RequestKind::kError:
      if (!report_.error) report_.error = {static_cast<uint32_t>(request.arg0), request.arg1};
      return abi::CallStatus::kOk;
    case abi::RequestKind::kResult: {
      if (!report_.result.empty() || expected_.size == 0 || request.arg0 != expected_.magic ||
          request.length != expected_.size) {
        return abi::CallStatus::kBadResult;
      }
      const uint8_t* bytes = ram_.UserRange(request.buffer, request.length);
      if (bytes == nullptr) return abi::CallStatus::kBadBuffer;
      uint32_t magic;
      std::memcpy(&magic, bytes, sizeof magic);
      if (magic != expected_.magic) return abi::CallStatus::kBadResult;
      report_.result.assign(bytes, bytes + request.length);
      return abi::CallStatus::kOk;
    }
    case abi::RequestKind::kRecord:
      return DoRecord(request);
    case abi::RequestKind::kSetSize:
      return DoSetSize(request);
    case abi::RequestKind::kFlush:
      return DoFlush(request);
    case abi::RequestKind::kRecords: {
      // Before the result, bounded per call and in total; the operation's host side parses
      // and checks them.
      if (!report_.result.empty() || request.length > abi::kMaxInfoRecordBytes ||
          report_.record_buffer.size() + request.length > abi::kMaxInfoRecordTotalBytes) {
        return abi::CallStatus::kBadResult;
      }
      const uint8_t* bytes = ram_.UserRange(request.buffer, request.length);
      if (bytes == nullptr) return abi::CallStatus::kBadBuffer;
      report_.record_buffer.insert(report_.record_buffer.end(), bytes, bytes + request.length);
      return abi::CallStatus::kOk;
    }
    case abi::RequestKind::kComplete:
      report_.completed = static_cast<int32_t>(request.arg0);
      *next = Next::kStop;
      return abi::CallStatus::kOk;
    case abi::RequestKind::kOperationReturned:
      report_.returned = static_cast<int64_t>(request.arg0);
      *next = Next::kStop;
      return abi::CallStatus::kOk;
  }
  return abi::CallStatus::kBadRequest;
}

}  // namespace instar::vmm
