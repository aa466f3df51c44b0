// What the operations' fuzz targets (ops/<op>/<op>_fuzz.cc) share: how a fuzz input is cut
// into a config prefix and device files, the guest's scratch region, the host's view of a
// layer (the info operation's result, as chain discovery gets it), and the qcow2 oracle:
// crates/check's reference count on a file before and after a writing operation. Host-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "abi/check.h"
#include "abi/info.h"
#include "crates/base/arena.h"
#include "ops/testing/fake_call_table.h"

namespace instar::ops::testing {

// Separates the device files of a fuzz input (tools/fuzz/make_op_seeds.py writes it).
inline constexpr std::string_view kDeviceSeparator = "\n--instar-fuzz-device--\n";

// A fuzz input: `prefix_bytes` bytes that choose the operation's config (zero-filled when the
// input is shorter), then up to `max_devices` files separated by kDeviceSeparator.
struct FuzzInput {
  std::vector<uint8_t> prefix;
  std::vector<std::vector<uint8_t>> devices;

  uint8_t Byte(size_t at) const { return prefix[at]; }
  uint64_t U64(size_t at) const;  // little-endian at prefix[at, at+8)
};
FuzzInput SplitFuzzInput(std::span<const uint8_t> data, size_t prefix_bytes, size_t max_devices);

// A config struct's bytes, for FakeCallTable.
template <class Config>
std::span<const uint8_t> ConfigBytes(const Config& config) {
  return {reinterpret_cast<const uint8_t*>(&config), sizeof config};
}

// The guest's scratch region (abi::kScratchMemSize, page aligned), zeroed as a fresh VM's is.
base::Arena FreshScratch();

// The info operation's result for a file, as the host's chain discovery would see it; nullopt
// when info refuses it.
std::optional<abi::InfoResult> DescribeImage(const std::vector<uint8_t>& bytes);
// `device` with the format, virtual size and cluster size info found (a host-side layer).
FakeDevice DescribedLayer(std::vector<uint8_t> bytes);

// Asserts how the run ended (FakeCallTable::ExpectFinished) and that a failure's code is one
// of the operation's `error_count` codes other than 0 (the host maps exactly those). With
// INSTAR_FUZZ_TRACE set, prints the outcome (to see what a corpus reaches).
void ExpectOutcome(const char* operation, const FakeCallTable& fake, int returned,
                   uint32_t error_count);

// The typed result the operation sent, if any.
template <class Result>
std::optional<Result> TypedResult(const FakeReport& report) {
  if (report.result.size() != sizeof(Result)) return std::nullopt;
  Result r;
  std::memcpy(&r, report.result.data(), sizeof r);
  return r;
}

// True when `device` is a qcow2 file that crates/check opens and finds no corruption in.
bool Qcow2Clean(const FakeDevice& device);
// The ordering invariant of every qcow2 writer (architecture §5): an image that was clean
// before the operation is clean after it, whether the operation succeeded or stopped at a
// refused write (leaks are allowed). Aborts with `what` otherwise.
void ExpectStillClean(bool was_clean, const FakeDevice& after, const char* what);

// The host's write limits are meant to cover whatever an operation writes to a sound image:
// when the input was clean, no write may have been refused for passing one. Aborts with
// `what` otherwise.
void ExpectWritesFit(bool was_clean, const FakeReport& report, const char* what);

}  // namespace instar::ops::testing
