#include "tools/cli/daemon_client.h"

#include <cstdio>
#include <filesystem>

#include "nlohmann/json.hpp"
#include "tools/cli/cli_common.h"
#include "vmm/base/std_stream.h"
#include "vmm/daemon/line_client.h"

namespace instar::cli {

int RunThroughDaemon(const std::string& socket_path, int argc, char** argv) {
  auto client = vmm::daemon::LineClient::Connect(socket_path);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitError;
  }
  nlohmann::json request;
  request["op"] = argv[0];
  request["args"] = nlohmann::json::array();
  for (int i = 1; i < argc; ++i) request["args"].push_back(argv[i]);
  std::error_code ec;
  request["cwd"] = std::filesystem::current_path(ec).string();
  auto reply = client->Call(request);
  if (!reply.ok()) {
    PrintError(reply.status().message());
    return kExitError;
  }
  const nlohmann::json& j = *reply;
  const std::string out = j.value("stdout", ""), err = j.value("stderr", "");
  Emit(stdout, out);
  Emit(stderr, err);
  // Errors the daemon itself raised (busy, timeout, bad request) carry no command stderr.
  if (err.empty() && j.contains("error") && j["error"].is_object()) {
    PrintError("daemon: " + j["error"].value("message", "request failed"));
  }
  if (j.contains("exit") && j["exit"].is_number_integer()) return j["exit"].get<int>();
  return j.value("ok", false) ? kExitOk : kExitError;
}

}  // namespace instar::cli
