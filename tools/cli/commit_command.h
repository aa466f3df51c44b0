// `instar commit [-q] [-f FMT] [-t CACHE] [-b BASE] [-r RATE] [-d] [-p] FILE`: qemu-img commit,
// the images read and written only inside a throw-away KVM VM.
#pragma once

namespace instar::cli {

// argv[0] is "commit". Returns the process exit code.
int CommitCommand(int argc, char** argv);

}  // namespace instar::cli
