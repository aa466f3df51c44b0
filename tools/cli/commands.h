// RunCommand: the instar subcommands, as main() and the daemon's workers run them.
// argv[0] is the subcommand ("info", ...).
#pragma once

namespace instar::cli {

int RunCommand(int argc, char** argv);
void PrintUsage();

}  // namespace instar::cli
