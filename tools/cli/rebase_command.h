// `instar rebase [-f FMT] [-u] -b BACKING [-F FMT] [-p] [-q] [-U] [-t CACHE] [-T CACHE] FILE`:
// qemu-img rebase, the overlay parsed and changed only inside a throw-away KVM VM.
#pragma once

namespace instar::cli {

// argv[0] is "rebase". Returns the process exit code.
int RebaseCommand(int argc, char** argv);

}  // namespace instar::cli
