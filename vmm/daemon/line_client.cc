#include "vmm/daemon/line_client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "vmm/daemon/peer.h"

namespace instar::vmm::daemon {

StatusOr<LineClient> LineClient::Connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("daemon socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());  // NUL: addr{} zeroed it
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid() ||
      ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status(StatusCode::kUnavailable, "cannot reach the daemon at " + socket_path + ": " +
                                                std::strerror(errno));
  }
  return LineClient(std::move(sock));
}

Status LineClient::SendRaw(const std::string& bytes, const std::vector<int>& fds) {
  return SendWithFds(socket_.get(), bytes.data(), bytes.size(), fds);
}

Status LineClient::Send(const nlohmann::json& request, const std::vector<int>& fds) {
  return SendRaw(request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                 fds);
}

StatusOr<nlohmann::json> LineClient::Receive() {
  while (buffer_.find('\n') == std::string::npos) {
    char chunk[65536];
    const ssize_t n = ::recv(socket_.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError("the daemon closed the connection without answering");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
  const size_t newline = buffer_.find('\n');
  nlohmann::json reply = nlohmann::json::parse(buffer_.substr(0, newline), nullptr, false);
  buffer_.erase(0, newline + 1);
  if (!reply.is_object()) return IoError("the daemon sent an unreadable reply");
  return reply;
}

StatusOr<nlohmann::json> LineClient::Call(const nlohmann::json& request,
                                          const std::vector<int>& fds) {
  INSTAR_RETURN_IF_ERROR(Send(request, fds));
  return Receive();
}

}  // namespace instar::vmm::daemon
