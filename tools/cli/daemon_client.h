// RunThroughDaemon: sends one command to instard (vmm/daemon/protocol.h) with the caller's
// working directory and prints its stdout and stderr exactly as the in-process command would,
// returning its exit code. The daemon opens files with this process's credentials.
#pragma once

#include <string>

namespace instar::cli {

int RunThroughDaemon(const std::string& socket_path, int argc, char** argv);

}  // namespace instar::cli
