#include "vmm/safety/qemu_image_lock.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace instar::vmm {
namespace {

constexpr off_t kPermBase = 100;
constexpr off_t kSharedBase = 200;
constexpr int kPermissionCount = 4;
constexpr const char* kPermissionNames[kPermissionCount] = {"consistent read", "write",
                                                            "write unchanged", "resize"};

// True when another open file description holds a lock on `byte`.
StatusOr<bool> LockedByOthers(int fd, off_t byte) {
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = byte;
  probe.l_len = 1;
  if (::fcntl(fd, F_OFD_GETLK, &probe) != 0) {
    return IoError(std::string("F_OFD_GETLK: ") + std::strerror(errno));
  }
  return probe.l_type != F_UNLCK;
}

Status Lock(int fd, off_t byte) {
  struct flock lock {};
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
    return IoError(std::string("F_OFD_SETLK: ") + std::strerror(errno));
  }
  return Status::Ok();
}

Status InUse(const std::string& lock, const std::string& display_name) {
  return Status(StatusCode::kPermissionDenied, "Failed to get " + lock +
                                                   " lock\nIs another process using the image [" +
                                                   display_name + "]?");
}

}  // namespace

Status AcquireImageLocks(int fd, ImageLockRequest request, const std::string& display_name) {
  for (int bit = 0; bit < kPermissionCount; ++bit) {
    if (!(request.perms & (1u << bit))) continue;
    INSTAR_ASSIGN_OR_RETURN(bool refused, LockedByOthers(fd, kSharedBase + bit));
    if (refused) return InUse(std::string("\"") + kPermissionNames[bit] + "\"", display_name);
  }
  for (int bit = 0; bit < kPermissionCount; ++bit) {
    if (!(request.unshared & (1u << bit))) continue;
    INSTAR_ASSIGN_OR_RETURN(bool held, LockedByOthers(fd, kPermBase + bit));
    if (held) {
      return InUse(std::string("shared \"") + kPermissionNames[bit] + "\"", display_name);
    }
  }
  for (int bit = 0; bit < kPermissionCount; ++bit) {
    if (request.perms & (1u << bit)) INSTAR_RETURN_IF_ERROR(Lock(fd, kPermBase + bit));
    if (request.unshared & (1u << bit)) INSTAR_RETURN_IF_ERROR(Lock(fd, kSharedBase + bit));
  }
  return Status::Ok();
}

}  // namespace instar::vmm
