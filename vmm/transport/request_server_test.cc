// The request server over a plain buffer: non-data requests and the records channel.
#include "vmm/transport/request_server.h"

#include <gtest/gtest.h>

#include <vector>

#include "abi/info.h"
#include "abi/info_records.h"
#include "abi/memory_map.h"

namespace instar::vmm {
namespace {

class RequestServerTest : public ::testing::Test {
 protected:
  RequestServerTest()
      : ram_(abi::kGuestRamSize, 0),
        view_{ram_.data(), ram_.size()},
        server_(view_, devices_, {abi::kInfoResultMagic, sizeof(abi::InfoResult)}, {}) {}

  abi::CallStatus Submit(abi::Request r) {
    r.magic = abi::kRequestMagic;
    view_.Write(abi::kTransport.base, r);
    last_next_ = server_.Serve();
    return static_cast<abi::CallStatus>(view_.Read<abi::Request>(abi::kTransport.base).status);
  }
  abi::Request Kind(abi::RequestKind kind) {
    abi::Request r{};
    r.kind = static_cast<uint32_t>(kind);
    return r;
  }

  std::vector<uint8_t> ram_;
  GuestRam view_;
  DeviceSet devices_;
  RequestServer server_;
  RequestServer::Next last_next_ = RequestServer::Next::kResume;
};

TEST_F(RequestServerTest, RecordsAccumulateBoundedAndBeforeTheResult) {
  abi::Request r = Kind(abi::RequestKind::kRecords);
  r.buffer = abi::kScratch.base;
  r.length = 64;
  ram_[abi::kScratch.base] = 0xAB;
  EXPECT_EQ(Submit(r), abi::CallStatus::kOk);
  EXPECT_EQ(Submit(r), abi::CallStatus::kOk);
  ASSERT_EQ(server_.report().records.size(), 128u);
  EXPECT_EQ(server_.report().records[64], 0xAB);
  abi::InfoResult result{};
  result.magic = abi::kInfoResultMagic;
  view_.Write(abi::kScratch.base + 4096, result);
  abi::Request send = Kind(abi::RequestKind::kResult);
  send.arg0 = abi::kInfoResultMagic;
  send.buffer = abi::kScratch.base + 4096;
  send.length = sizeof result;
  ASSERT_EQ(Submit(send), abi::CallStatus::kOk);
  EXPECT_EQ(Submit(r), abi::CallStatus::kBadResult);  // not after the result

  RequestServer fresh(view_, devices_, {abi::kInfoResultMagic, sizeof(abi::InfoResult)}, {});
  r.magic = abi::kRequestMagic;
  r.length = abi::kMaxInfoRecordBytes + 1;
  view_.Write(abi::kTransport.base, r);
  fresh.Serve();
  EXPECT_EQ(view_.Read<abi::Request>(abi::kTransport.base).status,
            static_cast<int32_t>(abi::CallStatus::kBadResult));
  r.length = 64;
  r.buffer = abi::kPml4.base;  // supervisor page
  view_.Write(abi::kTransport.base, r);
  fresh.Serve();
  EXPECT_EQ(view_.Read<abi::Request>(abi::kTransport.base).status,
            static_cast<int32_t>(abi::CallStatus::kBadBuffer));
}

TEST_F(RequestServerTest, ResultMustMatchTheExpectedMagicAndSize) {
  abi::InfoResult result{};
  result.magic = abi::kInfoResultMagic;
  view_.Write(abi::kScratch.base, result);
  abi::Request r = Kind(abi::RequestKind::kResult);
  r.arg0 = abi::kInfoResultMagic;
  r.buffer = abi::kScratch.base;
  r.length = sizeof result - 1;
  EXPECT_EQ(Submit(r), abi::CallStatus::kBadResult);
  r.length = sizeof result;
  EXPECT_EQ(Submit(r), abi::CallStatus::kOk);
  EXPECT_EQ(server_.report().result.size(), sizeof result);
}

TEST_F(RequestServerTest, CompletionStopsTheGuest) {
  abi::Request r = Kind(abi::RequestKind::kComplete);
  r.arg0 = 0;
  EXPECT_EQ(Submit(r), abi::CallStatus::kOk);
  EXPECT_EQ(last_next_, RequestServer::Next::kStop);
  EXPECT_EQ(*server_.report().completed, 0);
}

TEST_F(RequestServerTest, UnknownKindsAndBadMagicAreRefused) {
  EXPECT_EQ(Submit(Kind(static_cast<abi::RequestKind>(99))), abi::CallStatus::kBadRequest);
  abi::Request r = Kind(abi::RequestKind::kDeviceCount);
  view_.Write(abi::kTransport.base, r);  // magic left zero
  server_.Serve();
  EXPECT_EQ(view_.Read<abi::Request>(abi::kTransport.base).status,
            static_cast<int32_t>(abi::CallStatus::kBadRequest));
}

TEST(SanitizeGuestText, ReplacesTerminalControls) {
  EXPECT_EQ(SanitizeGuestText("ok\n\x1b[31m\x7f\xff"), "ok\n?[31m??");
}

}  // namespace
}  // namespace instar::vmm
