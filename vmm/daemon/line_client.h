// LineClient: a client of the instard protocol (one JSON object per line), for the CLI's
// --daemon mode, tests and benchmarks. Host-only.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "vmm/base/status.h"
#include "vmm/base/unique_fd.h"

namespace instar::vmm::daemon {

class LineClient {
 public:
  static StatusOr<LineClient> Connect(const std::string& socket_path);

  // Sends one request line (with `fds` attached to its first byte).
  Status Send(const nlohmann::json& request, const std::vector<int>& fds = {});
  Status SendRaw(const std::string& bytes, const std::vector<int>& fds = {});
  // The next reply; kIoError once the daemon has closed the connection.
  StatusOr<nlohmann::json> Receive();
  StatusOr<nlohmann::json> Call(const nlohmann::json& request, const std::vector<int>& fds = {});

  int fd() const { return socket_.get(); }

 private:
  explicit LineClient(UniqueFd socket) : socket_(std::move(socket)) {}
  UniqueFd socket_;
  std::string buffer_;
};

}  // namespace instar::vmm::daemon
