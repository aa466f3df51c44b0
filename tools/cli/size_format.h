// Human-readable sizes exactly as qemu-img prints them ("196 KiB", "1.5 GiB", "0 B"):
// three significant digits, binary units, switching unit once the value would reach 1000.
#pragma once

#include <cstdint>
#include <string>

namespace instar::cli {

std::string HumanSize(uint64_t bytes);

}  // namespace instar::cli
