// QEMU's image locking, as qemu-img 7.2 does it, so instar and QEMU see each other: QEMU marks
// the permissions it holds on an image with OFD read locks on byte 100 + bit, and the
// permissions it refuses to share with byte 200 + bit (bits: consistent read 0, write 1,
// write unchanged 2, resize 3). Before using a permission, nobody may refuse it; before
// refusing one, nobody may hold it. The locks are then held on the image's descriptor for the
// operation, so a QEMU started meanwhile finds the image in use. Host-only.
#pragma once

#include <cstdint>
#include <string>

#include "vmm/base/status.h"

namespace instar::vmm {

enum ImagePermission : uint32_t {
  kPermConsistentRead = 1u << 0,
  kPermWrite = 1u << 1,
  kPermWriteUnchanged = 1u << 2,
  kPermResize = 1u << 3,
};

struct ImageLockRequest {
  uint32_t perms = 0;     // permissions this operation uses
  uint32_t unshared = 0;  // permissions it refuses to others
};

// What qemu-img takes per command (measured against qemu-img 7.2 with a lock held per byte).
inline constexpr ImageLockRequest kInfoLocks{0, kPermWrite | kPermResize};
inline constexpr ImageLockRequest kCheckLocks{kPermConsistentRead, kPermWrite | kPermResize};
inline constexpr ImageLockRequest kWriteLocks{kPermConsistentRead | kPermWrite | kPermResize,
                                              kPermWrite | kPermResize};

// Checks for conflicts and takes the locks on `fd` (an open file description; the locks go
// away with it). On conflict: kPermissionDenied with qemu-img's two-line message, e.g.
// "Failed to get shared \"write\" lock\nIs another process using the image [NAME]?".
Status AcquireImageLocks(int fd, ImageLockRequest request, const std::string& display_name);

}  // namespace instar::vmm
