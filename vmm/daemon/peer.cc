#include "vmm/daemon/peer.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace instar::vmm::daemon {
namespace {

constexpr size_t kMaxFdsPerMessage = 16;

Status Errno(const char* what) { return IoError(std::string(what) + ": " + std::strerror(errno)); }

}  // namespace

StatusOr<Credentials> PeerCredentials(int socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Errno("SO_PEERCRED");
  Credentials c{cred.pid, cred.uid, cred.gid, {}};
  std::vector<gid_t> groups(64);
  len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) {
    if (errno != ERANGE) return Errno("SO_PEERGROUPS");
    groups.resize(len / sizeof(gid_t));
    if (::getsockopt(socket, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0) {
      return Errno("SO_PEERGROUPS");
    }
  }
  groups.resize(len / sizeof(gid_t));
  c.groups = std::move(groups);
  return c;
}

StatusOr<size_t> ReceiveWithFds(int socket, char* buffer, size_t size,
                                std::vector<UniqueFd>* fds) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  iovec iov{buffer, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("recvmsg");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) return InvalidArgument("more than 16 descriptors in a message");
  return static_cast<size_t>(n);
}

Status SendWithFds(int socket, const void* data, size_t size, const std::vector<int>& fds) {
  if (fds.size() > kMaxFdsPerMessage) return InvalidArgument("too many descriptors");
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)] = {};
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("sendmsg");
    sent += static_cast<size_t>(n);
    iov.iov_base = static_cast<char*>(iov.iov_base) + n;
    iov.iov_len -= static_cast<size_t>(n);
    msg.msg_control = nullptr;  // descriptors travel once, with the first byte
    msg.msg_controllen = 0;
  }
  return Status::Ok();
}

}  // namespace instar::vmm::daemon
