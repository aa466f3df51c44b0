// instar: qemu-img's info/check/resize/rebase/commit, with every image byte parsed inside a
// throw-away KVM micro-VM.
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/cli/check_command.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/info_command.h"

namespace {

void PrintUsage() {
  std::printf(
      "instar version 0.1 (qemu-img 7.2 compatible)\n"
      "usage: instar COMMAND [command options]\n"
      "\n"
      "Commands:\n"
      "  info [-f FMT] [--output=human|json] [-U] FILENAME\n"
      "  check [-f FMT] [--output=human|json] [-r leaks|all] [-q] FILENAME\n"
      "\n"
      "Run 'instar COMMAND --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace instar::cli;
  if (argc < 2) return UsageError("Not enough arguments");
  const std::string command = argv[1];
  if (command == "-h" || command == "--help") {
    PrintUsage();
    return kExitOk;
  }
  if (command == "-V" || command == "--version") {
    std::printf("instar version 0.1 (qemu-img 7.2 compatible)\n");
    return kExitOk;
  }
  if (command == "info") return InfoCommand(argc - 1, argv + 1);
  if (command == "check") return CheckCommand(argc - 1, argv + 1);
  return UsageError("Command not found: " + command);
}
