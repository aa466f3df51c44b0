#include "vmm/transport/request_validation.h"

#include <random>
#include <vector>

#include "abi/memory_map.h"
#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

using abi::CallStatus;
using abi::RequestKind;

class ValidateIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_.assign(abi::kGuestRamSize, 0);
    ram_ = {bytes_.data(), bytes_.size()};
    inputs_ = {DeviceLimits{1000, 512, false, 0}, DeviceLimits{1 << 20, 512, true, 2 << 20}};
    output_ = DeviceLimits{4096, 512, true, 8192};
  }

  abi::Request Io(RequestKind kind, uint32_t device, uint64_t sector, uint32_t count,
                  uint64_t buffer = abi::kScratchMemBase) {
    abi::Request r{};
    r.magic = abi::kRequestMagic;
    r.kind = static_cast<uint32_t>(kind);
    r.device = device;
    r.sector = sector;
    r.count = count;
    r.buffer = buffer;
    return r;
  }

  CallStatus Check(const abi::Request& r, ValidatedIo* io = nullptr) {
    ValidatedIo scratch;
    return ValidateIo(r, inputs_, &output_, ram_, io ? io : &scratch);
  }

  std::vector<uint8_t> bytes_;
  GuestRam ram_;
  std::vector<DeviceLimits> inputs_;
  DeviceLimits output_;
};

TEST_F(ValidateIoTest, AcceptsInRangeReads) {
  ValidatedIo io;
  ASSERT_EQ(Check(Io(RequestKind::kReadSectors, 0, 0, 2), &io), CallStatus::kOk);
  EXPECT_EQ(io.offset, 0u);
  EXPECT_EQ(io.length, 1024u);
  EXPECT_EQ(io.buffer, bytes_.data() + abi::kScratchMemBase);
  ASSERT_EQ(Check(Io(RequestKind::kReadSectors, abi::kOutputDevice, 7, 1), &io), CallStatus::kOk);
  EXPECT_TRUE(io.output);
}

TEST_F(ValidateIoTest, RefusesUnknownDevices) {
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 2, 0, 1)), CallStatus::kBadDevice);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 0xFFFFFFFE, 0, 1)), CallStatus::kBadDevice);
  EXPECT_EQ(ValidateIo(Io(RequestKind::kReadSectors, abi::kOutputDevice, 0, 1), inputs_,
                       nullptr, ram_, nullptr),
            CallStatus::kBadDevice);
}

TEST_F(ValidateIoTest, RefusesRangesPastTheDevice) {
  // 1000 bytes: two readable sectors (the second partly past EOF, zero-filled).
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 0, 1, 1)), CallStatus::kOk);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 0, 2, 1)), CallStatus::kOutOfRange);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 0, 1, 2)), CallStatus::kOutOfRange);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 0, UINT64_MAX, 1)), CallStatus::kOutOfRange);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 0, UINT64_MAX / 512, 1)),
            CallStatus::kOutOfRange);
}

TEST_F(ValidateIoTest, RefusesOversizedAndEmptyTransfers) {
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 1, 0, 0)), CallStatus::kBadRequest);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 1, 0, abi::kMaxTransferBytes / 512 + 1)),
            CallStatus::kTooLong);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 1, 0, 0xFFFFFFFF)), CallStatus::kTooLong);
}

TEST_F(ValidateIoTest, RefusesWritesToReadOnlyDevicesAndPastTheWriteLimit) {
  EXPECT_EQ(Check(Io(RequestKind::kWriteSectors, 0, 0, 1)), CallStatus::kReadOnly);
  EXPECT_EQ(Check(Io(RequestKind::kWriteSectors, 1, 0, 1)), CallStatus::kOk);
  EXPECT_EQ(Check(Io(RequestKind::kWriteSectors, abi::kOutputDevice, 15, 1)), CallStatus::kOk);
  EXPECT_EQ(Check(Io(RequestKind::kWriteSectors, abi::kOutputDevice, 16, 1)),
            CallStatus::kOutOfRange);
}

TEST_F(ValidateIoTest, RefusesBuffersOutsideUserRegions) {
  // Page tables, the GDT, a gap, past RAM, straddling the end of scratch, wrapping around.
  for (uint64_t buffer : {abi::kPml4.base, abi::kGdt.base, abi::kStackGuard.base,
                          abi::kGuestRamSize, abi::kScratch.end() - 256, uint64_t{0},
                          UINT64_MAX - 100, abi::kDoorbell.base}) {
    EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 1, 0, 1, buffer)), CallStatus::kBadBuffer)
        << std::hex << buffer;
  }
  // A buffer straddling two adjacent user regions is refused too: one region per request.
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 1, 0, 1, abi::kCallTable.end() - 256)),
            CallStatus::kBadBuffer);
  EXPECT_EQ(Check(Io(RequestKind::kReadSectors, 1, 0, 1, abi::kScratch.end() - 512)),
            CallStatus::kOk);
}

TEST_F(ValidateIoTest, RandomDescriptorsNeverEscape) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 200000; ++i) {
    abi::Request r{};
    r.magic = abi::kRequestMagic;
    r.kind = rng() % 2 ? static_cast<uint32_t>(RequestKind::kReadSectors)
                       : static_cast<uint32_t>(RequestKind::kWriteSectors);
    r.device = rng() % 4 == 0 ? abi::kOutputDevice : static_cast<uint32_t>(rng() % 4);
    r.sector = rng() % 3 == 0 ? rng() : rng() % 8192;
    r.count = rng() % 3 == 0 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 64);
    r.buffer = rng() % 2 ? rng() % (abi::kGuestRamSize + 4096) : rng();
    ValidatedIo io;
    if (Check(r, &io) != CallStatus::kOk) continue;
    const DeviceLimits& dev = io.output ? output_ : inputs_[io.device];
    ASSERT_GE(io.buffer, bytes_.data());
    ASSERT_LE(io.buffer + io.length, bytes_.data() + bytes_.size());
    ASSERT_NE(ram_.UserRange(io.buffer - bytes_.data(), io.length), nullptr);
    if (io.write) {
      ASSERT_TRUE(dev.writable);
      ASSERT_LE(io.offset + io.length, dev.write_limit);
    } else {
      ASSERT_LE(io.offset + io.length, (dev.size + 511) / 512 * 512);
    }
    ASSERT_LE(io.length, abi::kMaxTransferBytes);
  }
}

}  // namespace
}  // namespace instar::vmm
