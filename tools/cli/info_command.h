// `instar info`: qemu-img info's flags, output and exit codes.
#pragma once

namespace instar::cli {

int InfoCommand(int argc, char** argv);

}  // namespace instar::cli
