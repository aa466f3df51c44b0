// `instar check`: qemu-img check's flags, output and exit codes (0 clean, 1 check failed,
// 2 corruptions, 3 leaks only, 63 format without checks), with the image parsed in a VM.
#pragma once

namespace instar::cli {

// argv[0] is "check".
int CheckCommand(int argc, char** argv);

}  // namespace instar::cli
