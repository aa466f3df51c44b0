#include "ops/testing/operation_fuzz.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include <sys/mman.h>

#include "abi/image_format.h"
#include "abi/memory_map.h"
#include "crates/check/finding_sink.h"
#include "crates/check/image_access.h"
#include "crates/check/qcow2_check.h"
#include "ops/info/info.h"
#include "vmm/operations/info_request.h"

namespace instar::ops::testing {
namespace {

// A region of anonymous memory that reads as zeros again after each Fresh(): the kernel
// drops its pages (MADV_DONTNEED), so a run pays only for the pages it touches, where a
// memset of the guest's whole scratch region would cost more than most runs.
class ZeroedRegion {
 public:
  explicit ZeroedRegion(uint64_t size)
      : size_(size),
        base_(static_cast<uint8_t*>(
            mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))) {
    if (base_ == MAP_FAILED) Violation("cannot map the scratch region");
  }
  base::Arena Fresh() {
    if (madvise(base_, size_, MADV_DONTNEED) != 0) Violation("cannot reset the scratch region");
    return base::Arena(base_, size_);
  }

 private:
  uint64_t size_;
  uint8_t* base_;
};

ZeroedRegion& Scratch() {
  static ZeroedRegion region(abi::kScratchMemSize);
  return region;
}
// crates/check's own arena for the oracle (it runs after the operation, on its output).
ZeroedRegion& CheckScratch() {
  static ZeroedRegion region(abi::kScratchMemSize);
  return region;
}

// Oracle checks are skipped on files larger than this: the walk is linear in the file.
constexpr uint64_t kMaxCheckedBytes = 64u << 20;

bool ReadHeld(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  const FakeDevice& d = *static_cast<const FakeDevice*>(context);
  std::memset(out, 0, length);
  if (offset < d.bytes.size()) {
    const uint64_t n = std::min<uint64_t>(length, d.bytes.size() - offset);
    std::memcpy(out, d.bytes.data() + offset, n);
  }
  return true;
}

uint64_t HeldSize(void* context) { return static_cast<const FakeDevice*>(context)->size; }

}  // namespace

uint64_t FuzzInput::U64(size_t at) const {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= uint64_t{prefix[at + i]} << (8 * i);
  return v;
}

FuzzInput SplitFuzzInput(std::span<const uint8_t> data, size_t prefix_bytes,
                         size_t max_devices) {
  FuzzInput input;
  const size_t n = std::min(prefix_bytes, data.size());
  input.prefix.assign(data.begin(), data.begin() + n);
  input.prefix.resize(prefix_bytes, 0);
  auto rest = data.subspan(n);
  const auto* sep = reinterpret_cast<const uint8_t*>(kDeviceSeparator.data());
  const std::boyer_moore_searcher search(sep, sep + kDeviceSeparator.size());
  while (input.devices.size() < max_devices) {
    const auto end = std::search(rest.begin(), rest.end(), search);
    input.devices.emplace_back(rest.begin(), end);
    if (end == rest.end()) break;
    rest = rest.subspan(static_cast<size_t>(end - rest.begin()) + kDeviceSeparator.size());
  }
  return input;
}

base::Arena FreshScratch() { return Scratch().Fresh(); }

std::optional<abi::InfoResult> DescribeImage(const std::vector<uint8_t>& bytes) {
  abi::InfoConfig config{};
  config.magic = abi::kInfoConfigMagic;
  std::vector<FakeDevice> inputs;
  inputs.push_back(FakeDevice::Of(bytes));
  FakeCallTable fake(ConfigBytes(config),
                     std::move(inputs), std::nullopt,
                     {abi::kInfoResultMagic, sizeof(abi::InfoResult), {}});
  base::Arena scratch = FreshScratch();
  ExpectOutcome("info (layer description)", fake, RunInfo(fake.table(), scratch),
                abi::kInfoErrorCount);
  const std::optional<abi::InfoResult> result = TypedResult<abi::InfoResult>(fake.report());
  if (result && !vmm::ValidateInfoResult(*result).ok()) {
    Violation("an info result the host refuses");
  }
  return result;
}

FakeDevice DescribedLayer(std::vector<uint8_t> bytes) {
  const std::optional<abi::InfoResult> info = DescribeImage(bytes);
  FakeDevice d = FakeDevice::Of(std::move(bytes));
  d.role = abi::DeviceRole::kBacking;
  if (info) {
    d.format = static_cast<abi::ImageFormat>(info->format);
    d.virtual_size = info->virtual_size;
    d.cluster_size = info->cluster_size;
  }
  return d;
}

void ExpectOutcome(const char* operation, const FakeCallTable& fake, int returned,
                   uint32_t error_count) {
  fake.ExpectFinished(returned);
  // For looking at what a corpus reaches: INSTAR_FUZZ_TRACE=1 prints each run's outcome.
  if (std::getenv("INSTAR_FUZZ_TRACE") != nullptr) {
    std::fprintf(stderr, "%s: completed %d, error %u (detail %llu), %llu writes, %llu refused\n",
                 operation, returned, fake.report().error ? fake.report().error->first : 0,
                 fake.report().error
                     ? static_cast<unsigned long long>(fake.report().error->second)
                     : 0ull,
                 static_cast<unsigned long long>(fake.report().writes),
                 static_cast<unsigned long long>(fake.report().refused_writes));
  }
  if (fake.report().error) {
    const uint32_t code = fake.report().error->first;
    if (code == 0 || code >= error_count) {
      Violation("error code " + std::to_string(code) + " outside the operation's set");
    }
  }
}

bool Qcow2Clean(const FakeDevice& device) {
  if (device.size > kMaxCheckedBytes || device.size < 4 ||
      std::memcmp(device.bytes.data(), "QFI\xfb", 4) != 0) {
    return false;
  }
  check::ImageAccess io;
  io.context = const_cast<FakeDevice*>(&device);
  io.read = ReadHeld;
  io.size = HeldSize;
  check::FindingSink sink;
  sink.finding = [](void*, const abi::CheckFinding&) {};
  sink.snapshot_finding = [](void*, const abi::CheckSnapshotFinding&) {};
  check::CheckOptions options;
  options.backing_checked = true;
  base::Arena arena = CheckScratch().Fresh();
  abi::CheckResult result{};
  if (!check::CheckQcow2(io, sink, arena, options, &result).ok()) return false;
  return result.failure == 0 && result.check_errors == 0 && result.corruptions == 0;
}

void ExpectStillClean(bool was_clean, const FakeDevice& after, const char* what) {
  if (!was_clean || after.size > kMaxCheckedBytes) return;
  if (!Qcow2Clean(after)) Violation(std::string(what) + " was clean and is not any more");
}

void ExpectWritesFit(bool was_clean, const FakeReport& report, const char* what) {
  if (was_clean && report.refused_writes != 0) {
    Violation(std::string(what) + " was clean but needed a write past the host's write limit");
  }
}

}  // namespace instar::ops::testing
