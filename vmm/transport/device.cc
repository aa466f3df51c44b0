#include "vmm/transport/device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/transport/open_overrides.h"

namespace instar::vmm {
namespace {

// A private duplicate of a descriptor the client passed, if it allows the access asked for.
StatusOr<UniqueFd> FromOverride(int passed, bool writable) {
  const int flags = ::fcntl(passed, F_GETFL);
  if (flags < 0) return IoError(std::strerror(errno));
  if (writable && (flags & O_ACCMODE) == O_RDONLY) {
    return Status(StatusCode::kPermissionDenied, "Permission denied");
  }
  UniqueFd fd(::fcntl(passed, F_DUPFD_CLOEXEC, 3));
  if (!fd.valid()) return IoError(std::strerror(errno));
  return fd;
}

}  // namespace

StatusOr<Device> OpenDevice(const std::string& path, bool writable, abi::DeviceRole role) {
  if (const auto passed = FindOpenOverride(path)) {
    INSTAR_ASSIGN_OR_RETURN(UniqueFd fd, FromOverride(*passed, writable));
    return AttachOpened(std::move(fd), writable, role);
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer (AttachOpened refuses it anyway).
  UniqueFd fd(::open(path.c_str(),
                     (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.valid()) ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return AttachOpened(std::move(fd), writable, role);
}

StatusOr<Device> AttachOpened(UniqueFd fd, bool writable, abi::DeviceRole role) {
  if (!fd.valid()) {
    const StatusCode code = errno == ENOENT ? StatusCode::kNotFound
                            : errno == EACCES || errno == EPERM ? StatusCode::kPermissionDenied
                                                                : StatusCode::kIoError;
    return Status(code, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return IoError(std::strerror(errno));
  Device d;
  if (S_ISREG(st.st_mode)) {
    d.limits.size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) < 0) return IoError(std::strerror(errno));
    d.limits.size = bytes;
  } else if (S_ISDIR(st.st_mode)) {
    return Status(StatusCode::kInvalidArgument, "Is a directory");
  } else {
    return Status(StatusCode::kInvalidArgument, "not a regular file or block device");
  }
  d.fd = std::move(fd);
  d.limits.writable = writable;
  d.limits.write_limit = writable ? d.limits.size : 0;
  d.role = role;
  return d;
}

Status SyncDevice(const Device& device) {
  while (::fdatasync(device.fd.get()) != 0) {
    if (errno != EINTR) {
      return IoError(std::string("Could not flush image: ") + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Status SyncWritableDevices(const DeviceSet& devices) {
  for (const Device& d : devices.inputs) {
    if (d.limits.writable) INSTAR_RETURN_IF_ERROR(SyncDevice(d));
  }
  if (devices.output && devices.output->limits.writable) {
    INSTAR_RETURN_IF_ERROR(SyncDevice(*devices.output));
  }
  return Status::Ok();
}

abi::ChainConfig DescribeDevices(const DeviceSet& devices) {
  abi::ChainConfig c{};
  c.magic = abi::kChainConfigMagic;
  auto describe = [](const Device& d) {
    abi::ChainDevice cd{};
    cd.role = static_cast<uint32_t>(d.role);
    cd.format = static_cast<uint32_t>(d.format);
    cd.flags = d.limits.writable ? abi::kDeviceWritable : 0;
    cd.sector_size = d.limits.sector_size;
    cd.capacity = d.limits.size;
    cd.virtual_size = d.virtual_size;
    cd.cluster_size = d.cluster_size;
    return cd;
  };
  for (size_t i = 0; i < devices.inputs.size() && i < abi::kMaxInputDevices; ++i) {
    c.input[i] = describe(devices.inputs[i]);
    ++c.device_count;
  }
  if (devices.output) {
    c.has_output = 1;
    c.output = describe(*devices.output);
  }
  return c;
}

}  // namespace instar::vmm
