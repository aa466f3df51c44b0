// SHA-256 (FIPS 180-4) over a byte range. Host-only; used to pin embedded guest images.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace instar {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(const uint8_t* data, size_t size);
std::string ToHex(const Sha256Digest& digest);

}  // namespace instar
