// printf-style formatting into a std::string of whatever length the text needs, and the
// "0x..." form messages quote offsets in. One place for what the host's message and output
// code used to format into fixed buffers. Host-only.
#pragma once

#include <cstdint>
#include <string>

namespace instar {

std::string Format(const char* format, ...) __attribute__((format(printf, 1, 2)));

// "0x1a2b": lower-case hex with the prefix, as qemu's messages print offsets.
std::string Hex(uint64_t value);

}  // namespace instar
