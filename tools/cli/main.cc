// instar: qemu-img's info/check/resize/rebase/commit, with every image byte parsed inside a
// throw-away sandboxed machine. Two options of instar's own may come before the command:
// `--daemon SOCKET` (or INSTAR_DAEMON) runs it in instard with identical output, and
// `--sandbox kvm|process|auto` (or INSTAR_SANDBOX) picks the isolation backend.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"
#include "tools/cli/daemon_client.h"
#include "vmm/base/std_stream.h"

int main(int argc, char** argv) {
  using namespace instar::cli;
  std::vector<char*> args(argv + 1, argv + argc);
  std::string daemon;
  if (const char* env = std::getenv("INSTAR_DAEMON"); env != nullptr) daemon = env;
  // Leading options of instar's own, each as "--name=VALUE" or "--name VALUE".
  while (!args.empty()) {
    const std::string flag = args[0];
    std::string name;
    for (const char* option : {"--daemon", "--sandbox"}) {
      if (flag == option || flag.rfind(std::string(option) + "=", 0) == 0) name = option;
    }
    if (name.empty()) break;
    std::string value;
    if (flag.size() > name.size()) {
      value = flag.substr(name.size() + 1);
      args.erase(args.begin());
    } else if (args.size() >= 2) {
      value = args[1];
      args.erase(args.begin(), args.begin() + 2);
    } else {
      return UsageError("missing argument for option '" + name + "'");
    }
    if (name == "--daemon") daemon = value;
    else ::setenv("INSTAR_SANDBOX", value.c_str(), 1);
  }
  if (args.empty()) return UsageError("Not enough arguments");
  const std::string command = args[0];
  if (command == "-h" || command == "--help") {
    PrintUsage();
    return kExitOk;
  }
  if (command == "-V" || command == "--version") {
    instar::Emit(stdout, "instar version 0.1 (qemu-img 7.2 compatible)\n");
    return kExitOk;
  }
  if (!daemon.empty()) {
    return RunThroughDaemon(daemon, static_cast<int>(args.size()), args.data());
  }
  return RunCommand(static_cast<int>(args.size()), args.data());
}
