// instard: the instar daemon. Serves operations over a Unix socket, each in a worker process
// that takes the client's credentials and runs the command in a fresh sandboxed machine.
// See docs/daemon.md.
#include <getopt.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"
#include "vmm/base/std_stream.h"
#include "vmm/base/text_format.h"
#include "vmm/chain/path_policy.h"
#include "vmm/daemon/server.h"
#include "vmm/images/operation_registry.h"

namespace {

void Usage() {
  instar::Emit(stderr,
               "usage: instard --socket PATH [--max-concurrent N] [--max-queue N] "
               "[--deadline SECONDS] [--allow DIR ...] [--socket-mode OCTAL] "
               "[--sandbox kvm|process|auto] [--spare-workers N] [--config FILE]\n");
}

// How the daemon hands --allow to its workers (newline-separated directories).
constexpr const char* kAllowEnv = "INSTARD_ALLOW_DIRS";

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    if (nl > start) lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

bool ParsePositive(const char* text, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0) return false;
  *out = v;
  return true;
}

// 0 allowed, at most kMaxSpareWorkers.
bool ParseCount(const char* text, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v > instar::vmm::daemon::kMaxSpareWorkers) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using instar::vmm::daemon::ServerConfig;
  // A worker for one request (vmm/daemon/worker.h): while it waits for its order, open the
  // sandbox the daemon was told to use (INSTAR_SANDBOX, set below and inherited) and build the
  // machine the request will run in; then run the command as the client.
  if (argc == 2 && std::string(argv[1]) == "--worker") {
    if (const char* allowed = std::getenv(kAllowEnv); allowed != nullptr) {
      instar::vmm::SetOperatorAllowDirs(SplitLines(allowed));
    }
    return instar::vmm::daemon::WorkerMain(
        [] {
          std::unique_ptr<instar::vmm::Sandbox> sandbox = instar::cli::OpenSandboxOrReport();
          // The guest images' content hashes, checked now rather than after the order came.
          using instar::abi::GuestImageKind;
          if (sandbox != nullptr) {
            (void)instar::vmm::VerifyImage(sandbox->runtime(), GuestImageKind::kRuntime);
          }
          for (const instar::vmm::RegisteredOperation& op : instar::vmm::Operations()) {
            (void)instar::vmm::VerifyImage(*op.image, GuestImageKind::kOperation);
          }
          instar::cli::SetPreopenedSandbox(std::move(sandbox));
        },
        [](int child_argc, char** child_argv) {
          return instar::cli::RunCommand(child_argc, child_argv);
        });
  }
  ServerConfig config;
  std::string sandbox = "auto";
  std::vector<std::string> allow;
  static const option kOptions[] = {
      {"socket", required_argument, nullptr, 's'},
      {"max-concurrent", required_argument, nullptr, 'c'},
      {"max-queue", required_argument, nullptr, 'q'},
      {"deadline", required_argument, nullptr, 'd'},
      {"socket-mode", required_argument, nullptr, 'm'},
      {"sandbox", required_argument, nullptr, 'b'},
      {"config", required_argument, nullptr, 'f'},
      {"spare-workers", required_argument, nullptr, 'w'},
      {"allow", required_argument, nullptr, 'a'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  for (;;) {
    const int c = getopt_long(argc, argv, "h", kOptions, nullptr);
    if (c == -1) break;
    uint64_t v = 0;
    switch (c) {
      case 's': config.socket_path = optarg; break;
      case 'c':
        if (!ParsePositive(optarg, &v)) return Usage(), 2;
        config.max_concurrent = static_cast<uint32_t>(v);
        break;
      case 'q':
        if (!ParsePositive(optarg, &v)) return Usage(), 2;
        config.max_queue = static_cast<uint32_t>(v);
        break;
      case 'd':
        if (!ParsePositive(optarg, &v)) return Usage(), 2;
        config.deadline = std::chrono::seconds(v);
        break;
      case 'm': config.socket_mode = static_cast<mode_t>(std::strtoul(optarg, nullptr, 8)); break;
      case 'b': sandbox = optarg; break;
      case 'f': config.config_file = optarg; break;
      case 'w':
        if (!ParseCount(optarg, &v)) return Usage(), 2;
        config.spare_workers = static_cast<uint32_t>(v);
        break;
      case 'a': allow.push_back(optarg); break;
      case 'h': Usage(); return 0;
      default: Usage(); return 2;
    }
  }
  if (config.socket_path.empty() || optind != argc) {
    Usage();
    return 2;
  }
  // Backing and extent files may also live here, for every request (workers inherit it).
  std::string joined;
  for (const std::string& dir : allow) joined += dir + "\n";
  ::setenv(kAllowEnv, joined.c_str(), 1);
  ::setenv("INSTAR_SANDBOX", sandbox.c_str(), 1);  // workers inherit the choice
  const instar::Status status = instar::vmm::daemon::RunServer(config);
  if (!status.ok()) {
    instar::Emit(stderr, instar::Format("instard: %s\n", status.message().c_str()));
    return 1;
  }
  return 0;
}
