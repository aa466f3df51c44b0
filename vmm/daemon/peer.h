// The connecting client: its credentials from the kernel (SO_PEERCRED, SO_PEERGROUPS), and
// messages that may carry file descriptors (SCM_RIGHTS). Host-only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"

namespace instar::vmm::daemon {

struct Credentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

StatusOr<Credentials> PeerCredentials(int socket);

// One recvmsg: bytes into `buffer`, descriptors appended to `fds` (at most 16 per message; any
// beyond are closed by the kernel's truncation handling and reported as an error). Returns
// the byte count (0 at end of stream).
StatusOr<size_t> ReceiveWithFds(int socket, char* buffer, size_t size, std::vector<UniqueFd>* fds);

// Sends `data` and, with its first byte, `fds` (client side and tests).
Status SendWithFds(int socket, const void* data, size_t size, const std::vector<int>& fds);

}  // namespace instar::vmm::daemon
