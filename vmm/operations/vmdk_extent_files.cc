#include "vmm/operations/vmdk_extent_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace instar::vmm {
namespace {

// The descriptor's bytes (a descriptor file is at most 1 MiB; a larger file reads as "none").
std::string ReadDescriptor(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes.size() <= (1u << 20) ? bytes : std::string();
}

}  // namespace

StatusOr<Device> OpenVmdkExtent(const Allowlist& allowlist, const std::string& descriptor_path,
                                const std::string& filename, bool writable, std::string* path) {
  // qemu opens extent names as plain files (a ':' is no protocol here); instar only ever opens
  // them as files too, after the allowlist.
  *path = CombinePath(descriptor_path, filename);
  StatusOr<std::string> admitted = allowlist.Admit(*path);
  if (!admitted.ok()) {
    return Status(StatusCode::kImageRejected,
                  "Could not open '" + *path + "': " + admitted.status().message());
  }
  StatusOr<Device> device = OpenDevice(*admitted, writable, abi::DeviceRole::kExtent);
  if (!device.ok()) {
    return Status(StatusCode::kImageRejected,
                  "Could not open '" + *path + "': " + device.status().message());
  }
  return device;
}

NewExtentFiles::NewExtentFiles(std::string descriptor_path)
    : descriptor_path_(std::move(descriptor_path)) {}

NewExtentFiles::~NewExtentFiles() {
  if (keep_ || created_.empty() || ReadDescriptor(descriptor_path_) != descriptor_bytes_) return;
  for (const std::string& path : created_) ::unlink(path.c_str());
}

StatusOr<Device> NewExtentFiles::Create(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return InvalidArgument("invalid extent file name '" + name + "'");
  }
  if (!snapshot_taken_) {
    descriptor_bytes_ = ReadDescriptor(descriptor_path_);
    snapshot_taken_ = true;
  }
  const std::string path = CombinePath(descriptor_path_, name);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                     0644));
  if (!fd.valid()) {
    return Status(StatusCode::kImageRejected,
                  "Could not create '" + path + "': " + std::strerror(errno));
  }
  created_.push_back(path);
  // The descriptor will name the file: its directory entry must survive a power loss first.
  UniqueFd dir(::open(DirectoryOf(descriptor_path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid() || ::fsync(dir.get()) != 0) {
    return IoError("Could not sync the directory of '" + path + "': " + std::strerror(errno));
  }
  INSTAR_ASSIGN_OR_RETURN(Device device,
                          AttachOpened(std::move(fd), /*writable=*/true, abi::DeviceRole::kExtent));
  device.limits.write_limit = kNewExtentFileLimit;
  return device;
}

ExtentNameParts SplitDescriptorName(const std::string& descriptor_path) {
  const size_t slash = descriptor_path.rfind('/');
  const std::string base =
      slash == std::string::npos ? descriptor_path : descriptor_path.substr(slash + 1);
  const size_t dot = base.rfind('.');
  if (dot == std::string::npos) return {base, ""};
  return {base.substr(0, dot), base.substr(dot)};
}

}  // namespace instar::vmm
