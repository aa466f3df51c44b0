#include "vmm/transport/request_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "abi/info.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"
#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

// A RequestServer over a plain buffer as guest RAM and temporary files as devices.
class RequestServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_.assign(abi::kGuestRamSize, 0);
    ram_ = {bytes_.data(), bytes_.size()};
    devices_.inputs.push_back(MakeDevice("abcdefgh", false));
    devices_.output = MakeDevice(std::string(1024, 'o'), true);
  }

  Device MakeDevice(const std::string& content, bool writable) {
    char path[] = "/tmp/request_server_test.XXXXXX";
    const int fd = mkstemp(path);
    unlink(path);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    Device d;
    d.fd.Reset(fd);
    d.limits = {content.size(), 512, writable, writable ? 4096u : 0u};
    return d;
  }

  abi::Request& Slot() { return *reinterpret_cast<abi::Request*>(bytes_.data() + abi::kTransport.base); }

  abi::Request& Begin(abi::RequestKind kind) {
    Slot() = abi::Request{};
    Slot().magic = abi::kRequestMagic;
    Slot().kind = static_cast<uint32_t>(kind);
    return Slot();
  }

  // A kSetSize request: the status it got.
  int32_t SetSize(RequestServer& server, uint32_t device, uint64_t bytes) {
    auto& r = Begin(abi::RequestKind::kSetSize);
    r.device = device;
    r.arg0 = bytes;
    server.Serve();
    return Slot().status;
  }

  std::vector<uint8_t> bytes_;
  GuestRam ram_;
  DeviceSet devices_;
};

TEST_F(RequestServerTest, ReadsZeroFillPastEndOfFile) {
  RequestServer server(ram_, devices_, {}, {});
  uint8_t* buf = bytes_.data() + abi::kScratchMemBase;
  std::memset(buf, 0xAA, 512);
  auto& r = Begin(abi::RequestKind::kReadSectors);
  r.device = 0;
  r.count = 1;
  r.buffer = abi::kScratchMemBase;
  EXPECT_EQ(server.Serve(), RequestServer::Next::kResume);
  EXPECT_EQ(Slot().status, 0);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 8), "abcdefgh");
  for (int i = 8; i < 512; ++i) ASSERT_EQ(buf[i], 0) << i;
}

TEST_F(RequestServerTest, WritesGrowTheOutputUpToItsLimit) {
  RequestServer server(ram_, devices_, {}, {});
  std::memset(bytes_.data() + abi::kScratchMemBase, 'w', 1024);
  auto& r = Begin(abi::RequestKind::kWriteSectors);
  r.device = abi::kOutputDevice;
  r.sector = 4;
  r.count = 2;
  r.buffer = abi::kScratchMemBase;
  server.Serve();
  EXPECT_EQ(Slot().status, 0);
  EXPECT_EQ(devices_.output->limits.size, 3072u);
  Begin(abi::RequestKind::kDeviceCapacity).device = abi::kOutputDevice;
  server.Serve();
  EXPECT_EQ(Slot().value, 3072u);
  auto& far = Begin(abi::RequestKind::kWriteSectors);
  far.device = abi::kOutputDevice;
  far.sector = 8;
  far.count = 1;
  far.buffer = abi::kScratchMemBase;
  server.Serve();
  EXPECT_EQ(Slot().status, static_cast<int32_t>(abi::CallStatus::kOutOfRange));
  EXPECT_EQ(server.report().refused_requests, 1u);
}

TEST_F(RequestServerTest, RefusesBadMagicAndUnknownKinds) {
  RequestServer server(ram_, devices_, {}, {});
  Begin(abi::RequestKind::kDeviceCount).magic = 0;
  server.Serve();
  EXPECT_EQ(Slot().status, static_cast<int32_t>(abi::CallStatus::kBadRequest));
  Begin(abi::RequestKind::kDeviceCount).kind = 999;
  server.Serve();
  EXPECT_EQ(Slot().status, static_cast<int32_t>(abi::CallStatus::kBadRequest));
}

TEST_F(RequestServerTest, AcceptsExactlyOneResultOfTheExpectedShape) {
  RequestServer server(ram_, devices_, {0x11223344, 16}, {});
  const uint32_t magic = 0x11223344;
  std::memcpy(bytes_.data() + abi::kScratchMemBase, &magic, 4);
  auto send = [&](uint32_t arg_magic, uint64_t length) {
    auto& r = Begin(abi::RequestKind::kResult);
    r.arg0 = arg_magic;
    r.buffer = abi::kScratchMemBase;
    r.length = length;
    server.Serve();
    return Slot().status;
  };
  EXPECT_EQ(send(0x11223344, 15), static_cast<int32_t>(abi::CallStatus::kBadResult));
  EXPECT_EQ(send(0x55555555, 16), static_cast<int32_t>(abi::CallStatus::kBadResult));
  EXPECT_EQ(send(0x11223344, 16), 0);
  EXPECT_EQ(send(0x11223344, 16), static_cast<int32_t>(abi::CallStatus::kBadResult));
  EXPECT_EQ(server.report().result.size(), 16u);
}

TEST_F(RequestServerTest, DebugTextIsBoundedAndSanitised) {
  RequestServer server(ram_, devices_, {}, {});
  const char text[] = "ok\x1b[2J\x07\n";
  std::memcpy(bytes_.data() + abi::kScratchMemBase, text, sizeof text - 1);
  auto& r = Begin(abi::RequestKind::kDebugPrint);
  r.buffer = abi::kScratchMemBase;
  r.length = sizeof text - 1;
  server.Serve();
  EXPECT_EQ(server.report().debug_text, "ok?[2J?\n");
  auto& big = Begin(abi::RequestKind::kDebugPrint);
  big.buffer = abi::kScratchMemBase;
  big.length = abi::kMaxDebugTextBytes + 1;
  server.Serve();
  EXPECT_EQ(Slot().status, static_cast<int32_t>(abi::CallStatus::kTooLong));
  auto& unterminated_outside = Begin(abi::RequestKind::kDebugPrint);
  unterminated_outside.buffer = abi::kScratch.end() - 10;
  unterminated_outside.length = 20;
  server.Serve();
  EXPECT_EQ(Slot().status, static_cast<int32_t>(abi::CallStatus::kBadBuffer));
}

TEST_F(RequestServerTest, CompleteAndReturnStop) {
  RequestServer server(ram_, devices_, {}, {});
  Begin(abi::RequestKind::kError).arg0 = 7;
  EXPECT_EQ(server.Serve(), RequestServer::Next::kResume);
  Begin(abi::RequestKind::kComplete).arg0 = 1;
  EXPECT_EQ(server.Serve(), RequestServer::Next::kStop);
  EXPECT_EQ(server.report().completed, 1);
  EXPECT_EQ(server.report().error->first, 7u);
}

TEST_F(RequestServerTest, FailWritesAfterHook) {
  ServerHooks hooks;
  hooks.fail_writes_after = 1;
  RequestServer server(ram_, devices_, {}, hooks);
  for (int i = 0; i < 2; ++i) {
    auto& r = Begin(abi::RequestKind::kWriteSectors);
    r.device = abi::kOutputDevice;
    r.sector = static_cast<uint64_t>(i);
    r.count = 1;
    r.buffer = abi::kScratchMemBase;
    server.Serve();
    EXPECT_EQ(Slot().status, i == 0 ? 0 : static_cast<int32_t>(abi::CallStatus::kIoError));
  }
}

TEST_F(RequestServerTest, RecordsOnlyOfDeclaredTypesSizesAndCounts) {
  ExpectedResult expected;
  expected.records.push_back({0xAABBCCDD, 8, 2});
  RequestServer server(ram_, devices_, expected, {});
  const uint32_t magic = 0xAABBCCDD;
  std::memcpy(bytes_.data() + abi::kScratchMemBase, &magic, 4);
  auto send = [&](uint32_t arg_magic, uint64_t length) {
    auto& r = Begin(abi::RequestKind::kRecord);
    r.arg0 = arg_magic;
    r.buffer = abi::kScratchMemBase;
    r.length = length;
    server.Serve();
    return Slot().status;
  };
  const auto bad = static_cast<int32_t>(abi::CallStatus::kBadResult);
  EXPECT_EQ(send(0x11111111, 8), bad);  // undeclared type
  EXPECT_EQ(send(0xAABBCCDD, 9), bad);  // wrong size
  EXPECT_EQ(send(0xAABBCCDD, 8), 0);
  EXPECT_EQ(send(0xAABBCCDD, 8), 0);
  EXPECT_EQ(send(0xAABBCCDD, 8), bad);  // over its count cap
  ASSERT_EQ(server.report().records.size(), 2u);
  EXPECT_EQ(server.report().records[0].magic, 0xAABBCCDDu);
}

TEST_F(RequestServerTest, FlushSyncsOnlyWritableDevicesAndHonoursUnsafe) {
  auto flush = [&](RequestServer& server, uint32_t device) {
    Begin(abi::RequestKind::kFlush).device = device;
    server.Serve();
    return Slot().status;
  };
  RequestServer durable(ram_, devices_, {}, {});
  EXPECT_EQ(flush(durable, 0), static_cast<int32_t>(abi::CallStatus::kReadOnly));
  EXPECT_EQ(flush(durable, 7), static_cast<int32_t>(abi::CallStatus::kBadDevice));
  EXPECT_EQ(flush(durable, abi::kOutputDevice), 0);
  EXPECT_EQ(durable.report().flushes, 1u);

  ServerHooks unsafe;
  unsafe.durable_writes = false;
  RequestServer no_sync(ram_, devices_, {}, unsafe);
  EXPECT_EQ(flush(no_sync, abi::kOutputDevice), 0);
  EXPECT_EQ(no_sync.report().flushes, 0u);
}

TEST_F(RequestServerTest, SetSizeOnlyOnWritableDevicesBelowTheLimit) {
  RequestServer server(ram_, devices_, {}, {});
  auto set = [&](uint32_t device, uint64_t bytes) { return SetSize(server, device, bytes); };
  EXPECT_EQ(set(0, 0), static_cast<int32_t>(abi::CallStatus::kReadOnly));
  EXPECT_EQ(set(abi::kOutputDevice, 4097), static_cast<int32_t>(abi::CallStatus::kOutOfRange));
  EXPECT_EQ(set(abi::kOutputDevice, 512), 0);
  EXPECT_EQ(devices_.output->limits.size, 512u);
  EXPECT_EQ(lseek(devices_.output->fd.get(), 0, SEEK_END), 512);
  EXPECT_EQ(set(abi::kOutputDevice, 4096), 0);
  EXPECT_EQ(lseek(devices_.output->fd.get(), 0, SEEK_END), 4096);
}

// A writable input (a repair) may grow up to its write limit and shrink back, never below the
// size it had when opened: a hostile guest cannot truncate the data away.
TEST_F(RequestServerTest, SetSizeNeverShortensAnInputPastItsSizeAtOpen) {
  devices_.inputs[0] = MakeDevice(std::string(1000, 'i'), true);
  RequestServer server(ram_, devices_, {}, {});
  auto set = [&](uint32_t device, uint64_t bytes) { return SetSize(server, device, bytes); };
  const auto out_of_range = static_cast<int32_t>(abi::CallStatus::kOutOfRange);
  EXPECT_EQ(set(0, 999), out_of_range);
  EXPECT_EQ(set(0, 0), out_of_range);
  EXPECT_EQ(set(0, 4097), out_of_range);
  EXPECT_EQ(set(1, 2000), static_cast<int32_t>(abi::CallStatus::kBadDevice));
  EXPECT_EQ(lseek(devices_.inputs[0].fd.get(), 0, SEEK_END), 1000);
  EXPECT_EQ(set(0, 1536), 0);
  EXPECT_EQ(lseek(devices_.inputs[0].fd.get(), 0, SEEK_END), 1536);
  EXPECT_EQ(set(0, 1001), 0);
  EXPECT_EQ(lseek(devices_.inputs[0].fd.get(), 0, SEEK_END), 1001);
  EXPECT_EQ(set(0, 999), out_of_range);
  Begin(abi::RequestKind::kDeviceCapacity).device = 0;
  server.Serve();
  EXPECT_EQ(Slot().value, 1001u);
}

TEST_F(RequestServerTest, RecordBuffersAccumulateBoundedAndBeforeTheResult) {
  RequestServer server(ram_, devices_, {abi::kInfoResultMagic, sizeof(abi::InfoResult)}, {});
  bytes_[abi::kScratchMemBase] = 0xAB;
  auto send = [&](uint64_t buffer, uint64_t length) {
    auto& r = Begin(abi::RequestKind::kRecords);
    r.buffer = buffer;
    r.length = length;
    server.Serve();
    return Slot().status;
  };
  EXPECT_EQ(send(abi::kScratchMemBase, 64), 0);
  EXPECT_EQ(send(abi::kScratchMemBase, 64), 0);
  ASSERT_EQ(server.report().record_buffer.size(), 128u);
  EXPECT_EQ(server.report().record_buffer[64], 0xAB);
  const auto bad_result = static_cast<int32_t>(abi::CallStatus::kBadResult);
  EXPECT_EQ(send(abi::kScratchMemBase, abi::kMaxInfoRecordBytes + 1), bad_result);
  EXPECT_EQ(send(abi::kPml4.base, 64), static_cast<int32_t>(abi::CallStatus::kBadBuffer));
  // Not after the result.
  abi::InfoResult result{};
  result.magic = abi::kInfoResultMagic;
  std::memcpy(bytes_.data() + abi::kScratchMemBase + 4096, &result, sizeof result);
  auto& r = Begin(abi::RequestKind::kResult);
  r.arg0 = abi::kInfoResultMagic;
  r.buffer = abi::kScratchMemBase + 4096;
  r.length = sizeof result;
  server.Serve();
  ASSERT_EQ(Slot().status, 0);
  EXPECT_EQ(send(abi::kScratchMemBase, 64), bad_result);
}

TEST(SanitizeGuestText, KeepsPrintableNewlinesTabs) {
  EXPECT_EQ(SanitizeGuestText(std::string("a\tb\nc\r\0\xff", 8)), "a\tb\nc???");
}

}  // namespace
}  // namespace instar::vmm
