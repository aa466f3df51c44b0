// `instar resize [-f FMT] [--shrink] [--preallocation=MODE] [-q] FILE [+|-]SIZE`: qemu-img
// resize, the image parsed and changed only inside a throw-away KVM VM.
#pragma once

namespace instar::cli {

// argv[0] is "resize". Returns the process exit code.
int ResizeCommand(int argc, char** argv);

}  // namespace instar::cli
