#include "vmm/launcher/prebuilt_sandbox.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

// Counts what the decorator does with the machines of a fake backend.
struct Ledger {
  std::atomic<int> built{0};
  std::atomic<int> alive{0};
  std::atomic<int> ran{0};
  std::atomic<bool> fail{false};
};

class FakeMachine : public Machine {
 public:
  FakeMachine(Ledger& ledger, int id) : ledger_(ledger), id_(id) { ++ledger_.alive; }
  ~FakeMachine() override { --ledger_.alive; }
  // The fake's RAM size is its serial number.
  GuestRam ram() const override { return {nullptr, static_cast<uint64_t>(id_)}; }
  Status Run(uint64_t, RequestServer&, const VmLimits&, std::chrono::steady_clock::time_point,
             LaunchTimings&, SyscallFilter) override {
    ++ledger_.ran;
    return Status::Ok();
  }

 private:
  Ledger& ledger_;
  const int id_;
};

class FakeSandbox : public Sandbox {
 public:
  explicit FakeSandbox(Ledger& ledger) : ledger_(ledger) {}
  const char* name() const override { return "fake"; }
  const EmbeddedImage& runtime() const override {
    static const EmbeddedImage kNone{"none", nullptr, 0, {}};
    return kNone;
  }
  StatusOr<std::unique_ptr<Machine>> NewMachine() const override {
    if (ledger_.fail) return Status(StatusCode::kUnavailable, "no machines today");
    return std::unique_ptr<Machine>(std::make_unique<FakeMachine>(ledger_, ++ledger_.built));
  }

 private:
  Ledger& ledger_;
};

// Waits (bounded) for the builder thread to make `done` true.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

bool ReadyReaches(const PrebuiltSandbox& sandbox, size_t count) {
  return Eventually([&] { return sandbox.ready() == count; });
}

int IdOf(const std::unique_ptr<Machine>& m) { return static_cast<int>(m->ram().size); }

TEST(PrebuiltSandbox, BuildsAheadOnlyWhatTheCallerExpects) {
  Ledger ledger;
  PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 3, 2);
  ASSERT_TRUE(ReadyReaches(sandbox, 2));
  EXPECT_EQ(ledger.built, 2);
  EXPECT_STREQ(sandbox.name(), "fake");
  sandbox.ExpectMachines(5);
  ASSERT_TRUE(ReadyReaches(sandbox, 3));  // capped at `ready`
  sandbox.ExpectMachines(0);
  auto m = sandbox.NewMachine();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(sandbox.ready(), 2u);
  EXPECT_EQ(ledger.built, 3) << "nothing more is built once no more machines are expected";
}

TEST(PrebuiltSandbox, EveryMachineIsHandedOutOnceAndReplaced) {
  Ledger ledger;
  PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 1, 6);
  std::set<int> seen;
  for (int i = 0; i < 6; ++i) {
    auto m = sandbox.NewMachine();
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(seen.insert(IdOf(*m)).second) << "machine " << IdOf(*m) << " handed out twice";
  }
  EXPECT_EQ(ledger.built, 6);
  EXPECT_EQ(sandbox.ready(), 0u);
  // Beyond what was expected, machines are built inline, still fresh.
  auto extra = sandbox.NewMachine();
  ASSERT_TRUE(extra.ok());
  EXPECT_EQ(IdOf(*extra), 7);
}

TEST(PrebuiltSandbox, ConcurrentCallersGetDistinctMachines) {
  Ledger ledger;
  PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 2, 40);
  std::mutex mu;
  std::set<int> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto m = sandbox.NewMachine();
        ASSERT_TRUE(m.ok());
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(seen.insert(IdOf(*m)).second);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 40u);
}

TEST(PrebuiltSandbox, AFailingBackendIsReportedInline) {
  Ledger ledger;
  ledger.fail = true;
  PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 1, 3);
  auto m = sandbox.NewMachine();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "no machines today");
  ledger.fail = false;
  auto next = sandbox.NewMachine();
  EXPECT_TRUE(next.ok()) << "a failure does not stick";
}

TEST(PrebuiltSandbox, UsedMachinesComeBackAndAreDestroyedBehind) {
  Ledger ledger;
  PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 1, 1);
  {
    auto m = sandbox.NewMachine();
    ASSERT_TRUE(m.ok());
    DeviceSet devices;
    RequestServer server((*m)->ram(), devices, {}, {});
    LaunchTimings timings;
    EXPECT_TRUE((*m)->Run(0, server, {}, {}, timings, {}).ok());
    EXPECT_EQ(ledger.ran, 1);
  }
  EXPECT_TRUE(Eventually([&] { return ledger.alive == 0; }))
      << "the used machine is destroyed, never handed out again";
  auto next = sandbox.NewMachine();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(IdOf(*next), 2);
}

TEST(PrebuiltSandbox, DestructionDestroysUnusedMachines) {
  Ledger ledger;
  {
    PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 2, 2);
    ASSERT_TRUE(ReadyReaches(sandbox, 2));
    EXPECT_EQ(ledger.alive, 2);
  }
  EXPECT_EQ(ledger.alive, 0);
  // And one destroyed at once, before its builder got going, leaks nothing either.
  { PrebuiltSandbox sandbox(std::make_unique<FakeSandbox>(ledger), 4, 4); }
  EXPECT_EQ(ledger.alive, 0);
}

}  // namespace
}  // namespace instar::vmm
