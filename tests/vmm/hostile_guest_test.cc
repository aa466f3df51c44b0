// Hostile guests run in both sandboxes (real KVM VMs and seccomp-confined processes), each
// directly and through machines built ahead (PrebuiltSandbox, as the CLI and the daemon run
// them): each must be stopped or refused with the same clear reason, and the host (this
// process) and the attached files must come out unharmed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <tuple>

#include "abi/info.h"
#include "abi/info_records.h"
#include "gtest/gtest.h"
#include "tests/guests/bad_requests_image.h"
#include "tests/guests/exit_flood_image.h"
#include "tests/guests/fault_image.h"
#include "tests/guests/protocol_violations_image.h"
#include "tests/guests/raw_descriptors_image.h"
#include "tests/guests/request_flood_image.h"
#include "tests/guests/spin_image.h"
#include "tests/guests/syscall_attempt_image.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/launcher/prebuilt_sandbox.h"
#include "vmm/launcher/sandbox_factory.h"

namespace instar::vmm {
namespace {

using std::chrono::milliseconds;

const std::string kContent = "instar hostile-guest test device, must never change";

// The backend, and whether its machines are built ahead.
using Backend = std::tuple<SandboxChoice, bool>;

class HostileGuestTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto sandbox = OpenSandbox(std::get<0>(GetParam()), nullptr);
    ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
    sandbox_ = std::move(sandbox).value();
    if (std::get<1>(GetParam())) {
      sandbox_ = std::make_unique<PrebuiltSandbox>(std::move(sandbox_), 2, 1000);
    }
    char path[] = "/tmp/hostile_guest_test.XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    path_ = path;
    ASSERT_EQ(write(fd, kContent.data(), kContent.size()), static_cast<ssize_t>(kContent.size()));
    close(fd);
  }
  void TearDown() override { unlink(path_.c_str()); }

  // Runs `image` with the input file attached read-only (or writable, with room for 4 KiB
  // more); `selector` goes to the guest in InfoConfig::flags.
  StatusOr<OperationOutcome> Run(const EmbeddedImage& image, uint32_t selector = 0,
                                 VmLimits limits = {milliseconds(2000), 100000},
                                 std::vector<RecordSpec> records = {}, bool writable = false) {
    DeviceSet devices;
    Device d;
    d.fd.Reset(::open(path_.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    d.limits = {kContent.size(), 512, writable, writable ? kContent.size() + 4096 : 0};
    devices.inputs.push_back(std::move(d));
    abi::InfoConfig config{};
    config.magic = abi::kInfoConfigMagic;
    config.flags = selector;
    OperationLaunch launch;
    launch.operation = &image;
    launch.SetConfig(config);
    launch.expected_result = {abi::kInfoResultMagic, sizeof(abi::InfoResult), std::move(records)};
    launch.limits = limits;
    return RunOperation(*sandbox_, devices, launch);
  }

  void ExpectFileUnchanged() {
    char buf[256] = {};
    const int fd = ::open(path_.c_str(), O_RDONLY);
    const ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    EXPECT_EQ(std::string(buf, n > 0 ? n : 0), kContent);
  }

  static void ExpectGuestFailed(const StatusOr<OperationOutcome>& r, const std::string& text) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kGuestFailed);
    EXPECT_NE(r.status().message().find(text), std::string::npos) << "got: " << r.status().message();
  }

  bool kvm() const { return std::get<0>(GetParam()) == SandboxChoice::kKvm; }

  std::unique_ptr<Sandbox> sandbox_;
  std::string path_;
};

TEST_P(HostileGuestTest, SpinningGuestIsStoppedAtItsDeadline) {
  const auto start = std::chrono::steady_clock::now();
  auto r = Run(images::spin, 0, {milliseconds(300), 100000});
  const auto took = std::chrono::steady_clock::now() - start;
  ExpectGuestFailed(r, "ran past its deadline of 300 ms");
  EXPECT_LT(took, milliseconds(2000)) << "the watchdog must stop the guest promptly";
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, ExitFloodIsStoppedByTheExitBudget) {
  auto r = Run(images::exit_flood, 0, {milliseconds(10000), 500});
  ExpectGuestFailed(r, "exceeded its budget of 500 exits");
}

TEST_P(HostileGuestTest, ExitFloodIsStoppedByTheDeadlineToo) {
  auto r = Run(images::exit_flood, 0, {milliseconds(200), 1u << 30});
  ExpectGuestFailed(r, "ran past its deadline of 200 ms");
}

TEST_P(HostileGuestTest, FaultsAreReportedWithTheirVector) {
  struct Case {
    uint32_t selector;
    const char* text;
  } cases[] = {
      {0, "#DE divide error at rip 0x2"},
      {6, "#UD invalid opcode at rip 0x2"},
      {13, "#GP general protection at rip 0x2"},  // hlt at CPL3
      {14, "#PF page fault at rip 0x2"},          // write to the page tables
      {140, "#PF page fault"},                    // stack overflow into the guard page
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.selector);
    ExpectGuestFailed(Run(images::fault, c.selector), c.text);
  }
  // The page tables are mapped supervisor-only under KVM (error 0x7: present, write, user) and
  // not at all in the process sandbox (error 0x6: not present, write, user).
  ExpectGuestFailed(Run(images::fault, 14), kvm() ? "(address 0x1000, error 0x7)"
                                                  : "(address 0x1000, error 0x6)");
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, MalformedRequestsAreEachRefused) {
  auto r = Run(images::bad_requests);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const OperationReport& report = r->report;
  ASSERT_TRUE(report.error.has_value()) << report.debug_text;
  EXPECT_EQ(report.error->second, 16u) << report.debug_text;  // every case refused as expected
  EXPECT_GE(report.refused_requests, 16u);
  EXPECT_EQ(report.bytes_written, 0u);
  ExpectFileUnchanged();
}

// A guest that may write its input still cannot shorten it (destroying data) or grow it past
// its write limit.
TEST_P(HostileGuestTest, AWritableInputIsNeverTruncated) {
  auto r = Run(images::bad_requests, 1, {milliseconds(2000), 100000}, {}, true);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->report.error.has_value()) << r->report.debug_text;
  EXPECT_EQ(r->report.error->second, 5u) << r->report.debug_text;
  EXPECT_GE(r->report.refused_requests, 5u);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kContent.size());
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, GarbageDescriptorsRungDirectlyAreEachRefused) {
  auto r = Run(images::raw_descriptors, kvm() ? 1 : 2);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->report.error.has_value());
  EXPECT_EQ(r->report.error->second, 26u) << r->report.debug_text;
  EXPECT_GE(r->report.refused_requests, 26u);
  EXPECT_TRUE(r->report.result.empty());
  EXPECT_TRUE(r->report.record_buffer.empty());
  ExpectFileUnchanged();
}

// Floods run with a generous deadline: each is bounded by the host's caps, not by time.
constexpr VmLimits kFloodLimits = {milliseconds(30000), 200000};

TEST_P(HostileGuestTest, DebugTextFloodIsBoundedAndSanitised) {
  auto r = Run(images::request_flood, 1, kFloodLimits);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const OperationReport& report = r->report;
  ASSERT_TRUE(report.error.has_value());
  EXPECT_EQ(report.error->second, 4007u) << "every print got the status it must";
  EXPECT_EQ(report.debug_text.size(), RequestServer::kMaxDebugTextTotal);
  for (char c : report.debug_text) {
    const auto u = static_cast<unsigned char>(c);
    ASSERT_TRUE(u == '\n' || u == '\t' || (u >= 0x20 && u < 0x7F)) << "byte " << int(u);
  }
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, RecordFloodKeepsOnlyWhatTheHostDeclared) {
  auto r = Run(images::request_flood, 2, kFloodLimits, {{0x444F4C46, 16, 100}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  const OperationReport& report = r->report;
  ASSERT_TRUE(report.error.has_value());
  EXPECT_EQ(report.error->second, 1000u + 4 + 1 + 128 + 2);
  EXPECT_EQ(report.records.size(), 100u);
  EXPECT_EQ(report.record_buffer.size(), abi::kMaxInfoRecordTotalBytes);
}

TEST_P(HostileGuestTest, RequestFloodIsServedAndCounted) {
  auto r = Run(images::request_flood, 3, kFloodLimits);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const OperationReport& report = r->report;
  EXPECT_NE(report.debug_text.find("tally 0000030002"), std::string::npos) << report.debug_text;
  ASSERT_TRUE(report.error.has_value());
  EXPECT_EQ(report.error->first, 1000u) << "the first error is the one kept";
  EXPECT_GE(report.refused_requests, 20000u + 5000 + 1);
  EXPECT_EQ(report.result.size(), sizeof(abi::InfoResult));
  EXPECT_EQ(report.bytes_read, 0u);
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, SystemCallsNeverReachTheHostKernel) {
  for (uint32_t which = 1; which <= 7; ++which) {
    SCOPED_TRACE(which);
    // KVM: `syscall` enters the guest's own (absent) kernel and faults there. Process: seccomp
    // kills the guest at the attempt.
    ExpectGuestFailed(Run(images::syscall_attempt, which),
                      kvm() ? "guest crashed:" : "guest made a forbidden system call");
  }
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, ProtocolViolationsAreReported) {
  ExpectGuestFailed(Run(images::protocol_violations, 1), "returned (status 42) without completing");
  ExpectGuestFailed(Run(images::protocol_violations, 2), "completed without sending a result");
  // The doorbell page: an MMIO page under KVM, unmapped in the process sandbox.
  ExpectGuestFailed(Run(images::protocol_violations, 3),
                    kvm() ? "stray 8-byte MMIO read" : "#PF page fault");
  ExpectGuestFailed(Run(images::protocol_violations, 4),
                    kvm() ? "stray 4-byte MMIO write at 0x10000040"
                          : "(address 0x10000040, error 0x6)");
  ExpectGuestFailed(Run(images::protocol_violations, 5), "completed without sending a result");
  ExpectFileUnchanged();
}

TEST_P(HostileGuestTest, HostSurvivesManyHostileRunsInARow) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(Run(images::fault, 6).ok());
    EXPECT_FALSE(Run(images::protocol_violations, 4).ok());
  }
  EXPECT_TRUE(Run(images::bad_requests).ok());
}

INSTANTIATE_TEST_SUITE_P(
    BothSandboxes, HostileGuestTest,
    ::testing::Combine(::testing::Values(SandboxChoice::kKvm, SandboxChoice::kProcess),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == SandboxChoice::kKvm ? "Kvm" : "Process") +
             (std::get<1>(info.param) ? "Prebuilt" : "");
    });

}  // namespace
}  // namespace instar::vmm
