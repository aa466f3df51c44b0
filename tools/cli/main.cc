// instar: qemu-img's info/check/resize/rebase/commit, with every image byte parsed inside a
// throw-away sandboxed machine. `--daemon SOCKET` (or INSTAR_DAEMON) runs the command in
// instard instead of in this process, with identical output.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"
#include "tools/cli/daemon_client.h"

int main(int argc, char** argv) {
  using namespace instar::cli;
  std::vector<char*> args(argv + 1, argv + argc);
  std::string daemon;
  if (const char* env = std::getenv("INSTAR_DAEMON"); env != nullptr) daemon = env;
  if (!args.empty() && std::strncmp(args[0], "--daemon", 8) == 0) {
    const std::string flag = args[0];
    if (flag.rfind("--daemon=", 0) == 0) {
      daemon = flag.substr(9);
      args.erase(args.begin());
    } else if (flag == "--daemon" && args.size() >= 2) {
      daemon = args[1];
      args.erase(args.begin(), args.begin() + 2);
    } else {
      return UsageError("missing argument for option '--daemon'");
    }
  }
  if (args.empty()) return UsageError("Not enough arguments");
  const std::string command = args[0];
  if (command == "-h" || command == "--help") {
    PrintUsage();
    return kExitOk;
  }
  if (command == "-V" || command == "--version") {
    std::printf("instar version 0.1 (qemu-img 7.2 compatible)\n");
    return kExitOk;
  }
  if (!daemon.empty()) {
    return RunThroughDaemon(daemon, static_cast<int>(args.size()), args.data());
  }
  return RunCommand(static_cast<int>(args.size()), args.data());
}
