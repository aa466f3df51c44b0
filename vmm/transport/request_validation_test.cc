// Data request validation with synthetic and random descriptors.
#include "vmm/transport/request_validation.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "abi/memory_map.h"

namespace instar::vmm {
namespace {

class RequestValidationTest : public ::testing::Test {
 protected:
  RequestValidationTest() : ram_(abi::kGuestRamSize, 0), view_{ram_.data(), ram_.size()} {
    inputs_.push_back({10 * 512 + 100, 512, false, 0});
  }
  abi::Request Read(uint64_t sector, uint32_t count, uint64_t buffer) {
    abi::Request r{};
    r.magic = abi::kRequestMagic;
    r.kind = static_cast<uint32_t>(abi::RequestKind::kReadSectors);
    r.sector = sector;
    r.count = count;
    r.buffer = buffer;
    return r;
  }
  abi::CallStatus Validate(const abi::Request& r) {
    ValidatedIo io;
    return ValidateIo(r, inputs_, nullptr, view_, &io);
  }

  std::vector<uint8_t> ram_;
  GuestRam view_;
  std::vector<DeviceLimits> inputs_;
};

TEST_F(RequestValidationTest, AcceptsAReadInsideEverything) {
  ValidatedIo io;
  ASSERT_EQ(ValidateIo(Read(2, 3, abi::kScratch.base), inputs_, nullptr, view_, &io),
            abi::CallStatus::kOk);
  EXPECT_EQ(io.offset, 1024u);
  EXPECT_EQ(io.length, 1536u);
  EXPECT_EQ(io.buffer, ram_.data() + abi::kScratch.base);
}

TEST_F(RequestValidationTest, TheLastPartialSectorIsReadable) {
  EXPECT_EQ(Validate(Read(10, 1, abi::kScratch.base)), abi::CallStatus::kOk);
  EXPECT_EQ(Validate(Read(11, 1, abi::kScratch.base)), abi::CallStatus::kOutOfRange);
}

TEST_F(RequestValidationTest, RefusesBadRequests) {
  abi::Request r = Read(0, 1, abi::kScratch.base);
  r.device = 5;
  EXPECT_EQ(Validate(r), abi::CallStatus::kBadDevice);
  EXPECT_EQ(Validate(Read(0, 0, abi::kScratch.base)), abi::CallStatus::kBadRequest);
  EXPECT_EQ(Validate(Read(0, 1, abi::kPml4.base)), abi::CallStatus::kBadBuffer);
  EXPECT_EQ(Validate(Read(UINT64_MAX, 1, abi::kScratch.base)), abi::CallStatus::kOutOfRange);
  EXPECT_EQ(Validate(Read(0, 0xFFFFFFFF, abi::kScratch.base)), abi::CallStatus::kTooLong);
  r = Read(0, 1, abi::kScratch.base);
  r.kind = static_cast<uint32_t>(abi::RequestKind::kWriteSectors);
  EXPECT_EQ(Validate(r), abi::CallStatus::kReadOnly);
}

TEST_F(RequestValidationTest, RandomDescriptorsNeverEscapeRam) {
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 100000; ++i) {
    abi::Request r{};
    r.magic = abi::kRequestMagic;
    r.kind = static_cast<uint32_t>(rng() % 3);
    r.device = static_cast<uint32_t>(rng() % 3);
    r.sector = rng() % 4 == 0 ? rng() : rng() % 16;
    r.count = static_cast<uint32_t>(rng() % 4 == 0 ? rng() : rng() % 16);
    r.buffer = rng() % 2 == 0 ? rng() : rng() % abi::kGuestRamSize;
    ValidatedIo io;
    if (ValidateIo(r, inputs_, nullptr, view_, &io) != abi::CallStatus::kOk) continue;
    ASSERT_GE(io.buffer, ram_.data());
    ASSERT_LE(io.buffer + io.length, ram_.data() + ram_.size());
    ASSERT_LE(io.offset + io.length, 11u * 512);
  }
}

}  // namespace
}  // namespace instar::vmm
