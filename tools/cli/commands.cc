#include "tools/cli/commands.h"

#include <cstdio>
#include <string>

#include "tools/cli/check_command.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commit_command.h"
#include "tools/cli/info_command.h"
#include "tools/cli/rebase_command.h"
#include "tools/cli/resize_command.h"
#include "vmm/base/std_stream.h"

namespace instar::cli {

void PrintUsage() {
  Emit(stdout, "instar version 0.1 (qemu-img 7.2 compatible)\n"
      "usage: instar [--daemon SOCKET] COMMAND [command options]\n"
      "\n"
      "Commands:\n"
      "  check [-f FMT] [--output=human|json] [-r leaks|all] [-q] FILENAME\n"
      "  commit [-q] [-f FMT] [-t CACHE] [-b BASE] [-r RATE] [-d] [-p] FILENAME\n"
      "  info [-f FMT] [--output=human|json] [--backing-chain] [-U] [--allow-dir DIR] FILENAME\n"
      "  rebase [-f FMT] [-u] -b BACKING [-F BACKING_FMT] [-p] [-q] [-U] FILENAME\n"
      "  resize [-f FMT] [--preallocation=MODE] [-q] [--shrink] FILENAME [+ | -]SIZE\n"
      "\n"
      "Run 'instar COMMAND --help' for a command's options. With --daemon (or INSTAR_DAEMON)\n"
      "the command runs in the instard daemon listening on SOCKET.\n");
}

int RunCommand(int argc, char** argv) {
  const std::string command = argv[0];
  if (command == "check") return CheckCommand(argc, argv);
  if (command == "commit") return CommitCommand(argc, argv);
  if (command == "info") return InfoCommand(argc, argv);
  if (command == "rebase") return RebaseCommand(argc, argv);
  if (command == "resize") return ResizeCommand(argc, argv);
  return UsageError("Command not found: " + command);
}

}  // namespace instar::cli
