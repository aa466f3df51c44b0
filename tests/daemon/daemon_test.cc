// instard end to end: the real daemon binary on a temporary socket, real clients. Protocol,
// descriptor passing, credentials (a client never learns about a file it cannot read),
// limits, faults, load, drain and reload.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "vmm/daemon/line_client.h"

extern char** environ;

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

std::string Runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir ? dir : ".") + "/instar/" + path;
}

long ResidentKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
  }
  return -1;
}

int CountOpenFds(pid_t pid) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
  return n;
}

// The daemon's child processes (its workers), from every thread's children list.
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream list(task.path() / "children");
    pid_t child;
    while (list >> child) children.push_back(child);
  }
  return children;
}

bool Exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// A test client: asserts on transport failures, returns null when the daemon hung up.
class Client {
 public:
  explicit Client(const std::string& socket_path)
      : client_(instar::vmm::daemon::LineClient::Connect(socket_path)) {}
  bool connected() const { return client_.ok(); }

  void SendRaw(const std::string& text, const std::vector<int>& fds = {}) {
    ASSERT_TRUE(client_->SendRaw(text, fds).ok());
  }
  Json Receive() {
    auto reply = client_->Receive();
    return reply.ok() ? *reply : Json(nullptr);
  }
  Json Call(const Json& request, const std::vector<int>& fds = {}) {
    SendRaw(request.dump() + "\n", fds);
    return Receive();
  }

 private:
  instar::StatusOr<instar::vmm::daemon::LineClient> client_;
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("instard-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::all);
    socket_ = (dir_ / "sock").string();
    // A small qcow2, world readable, and a secret raw file only root may read.
    image_ = (dir_ / "image.qcow2").string();
    ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 " + image_ + " 16M").c_str()), 0);
    fs::permissions(image_, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    secret_ = (dir_ / "secret.raw").string();
    std::ofstream(secret_) << "secret";
    fs::permissions(secret_, fs::perms::owner_read | fs::perms::owner_write);
  }
  void TearDown() override {
    Stop();
    fs::remove_all(dir_);
  }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {Runfile("tools/daemon/instard"), "--socket", socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "log").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    for (int i = 0; i < 200 && !fs::exists(socket_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(fs::exists(socket_));
  }
  int Stop() {
    if (pid_ <= 0) return 0;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // The daemon's worker counts once it has `idle` workers waiting and none exiting (bounded
  // wait: workers are started and reaped in the background). With `open_fds`, also once no
  // connection but the one asking is left, and the daemon's descriptor count at that point.
  Json SettledWorkers(uint32_t idle, int* open_fds = nullptr) {
    Client c(socket_);
    Json result;
    for (int i = 0; i < 1000; ++i) {
      result = c.Call({{"op", "status"}})["result"];
      const Json& workers = result["workers"];
      if (workers["idle"] == idle && workers["retiring"] == 0 &&
          (open_fds == nullptr || result["connections"] == 1)) {
        if (open_fds != nullptr) *open_fds = CountOpenFds(pid_);
        return workers;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the daemon did not settle: " << result.dump();
    return result["workers"];
  }

  fs::path dir_;
  std::string socket_, image_, secret_;
  pid_t pid_ = -1;
};

TEST_F(DaemonTest, InfoMatchesTheCliAndStatusCounts) {
  Start();
  Client c(socket_);
  ASSERT_TRUE(c.connected());
  const Json reply = c.Call({{"id", "a"}, {"op", "info"}, {"args", {"--output=json", image_}}});
  ASSERT_EQ(reply["ok"], true) << reply.dump();
  EXPECT_EQ(reply["id"], "a");
  EXPECT_EQ(reply["exit"], 0);
  EXPECT_EQ(reply["result"]["format"], "qcow2");
  EXPECT_EQ(reply["result"]["virtual-size"], 16 << 20);
  // The object form mirrors the flags; human output arrives as stdout text.
  const Json human = c.Call({{"id", 2}, {"op", "info"}, {"args", {{"filename", image_}}}});
  ASSERT_EQ(human["ok"], true);
  EXPECT_NE(human["stdout"].get<std::string>().find("file format: qcow2\n"), std::string::npos);
  const Json status = c.Call({{"id", 3}, {"op", "status"}});
  EXPECT_EQ(status["result"]["counters"]["requests"], 2);
  EXPECT_EQ(status["result"]["counters"]["succeeded"], 2);
  EXPECT_GT(status["result"]["latency_ms"]["p50"].get<double>(), 0.0);
}

TEST_F(DaemonTest, CommitWritesTheBaseAndAnswersLikeTheCli) {
  const std::string base = (dir_ / "base.qcow2").string();
  const std::string top = (dir_ / "top.qcow2").string();
  const std::string expected = (dir_ / "expected.qcow2").string();
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 " + base + " 4M && qemu-io -c 'write -P 1 0 4M' " +
                         base + " >/dev/null && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 " +
                         top + " && qemu-io -c 'write -P 2 1M 64k' " + top + " >/dev/null && " +
                         "qemu-img convert -O qcow2 " + top + " " + expected)
                            .c_str()),
            0);
  Start();
  Client c(socket_);
  ASSERT_TRUE(c.connected());
  const Json reply = c.Call({{"op", "commit"}, {"args", {{"filename", top}, {"drop", true}}}});
  ASSERT_EQ(reply["ok"], true) << reply.dump();
  EXPECT_EQ(reply["exit"], 0);
  EXPECT_EQ(reply["stdout"], "Image committed.\n");
  EXPECT_EQ(std::system(("qemu-img compare -q " + expected + " " + base).c_str()), 0);
  const Json refused = c.Call({{"op", "commit"}, {"args", {{"filename", base}}}});
  EXPECT_EQ(refused["exit"], 1) << refused.dump();
  EXPECT_NE(refused.dump().find("Image does not have a backing file"), std::string::npos)
      << refused.dump();
}

TEST_F(DaemonTest, MalformedAndUnknownRequestsGetClearErrors) {
  Start();
  Client c(socket_);
  c.SendRaw("this is not json\n");
  EXPECT_EQ(c.Receive()["error"]["code"], "bad_request");
  EXPECT_EQ(c.Call({{"op", "format-disk"}})["error"]["code"], "unknown_op");
  EXPECT_EQ(c.Call({{"op", "info"}, {"args", "x"}})["error"]["code"], "bad_request");
  const Json failed = c.Call({{"op", "info"}, {"args", {(dir_ / "missing").string()}}});
  EXPECT_EQ(failed["ok"], false);
  EXPECT_EQ(failed["error"]["code"], "failed");
  EXPECT_EQ(failed["exit"], 1);
  EXPECT_NE(failed["stderr"].get<std::string>().find("No such file or directory"), std::string::npos);
  // The same connection still works.
  EXPECT_EQ(c.Call({{"op", "status"}})["ok"], true);
  // An oversized line is refused and the connection closed.
  Client big(socket_);
  big.SendRaw(std::string(70 * 1024, 'x'));
  EXPECT_EQ(big.Receive()["error"]["code"], "bad_request");
  EXPECT_TRUE(big.Receive().is_null());
}

TEST_F(DaemonTest, PassedDescriptorsAreUsedUnderTheirArgumentName) {
  Start();
  Client c(socket_);
  const int fd = ::open(image_.c_str(), O_RDONLY);
  const Json reply = c.Call(
      {{"op", "info"}, {"args", {"--output=json", "passed.img"}}, {"files", {{"passed.img", 0}}}},
      {fd});
  ::close(fd);
  ASSERT_EQ(reply["ok"], true) << reply.dump();
  EXPECT_EQ(reply["result"]["filename"], "passed.img");
  EXPECT_EQ(reply["result"]["format"], "qcow2");
  // Naming a descriptor the request did not carry is an error.
  EXPECT_EQ(c.Call({{"op", "info"}, {"args", {"x"}}, {"files", {{"x", 1}}}})["error"]["code"],
            "bad_request");
}

// Runs `body` in a child process that has become `nobody`; returns its exit status.
int AsNobody(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(99);
    _exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 98;
}

TEST_F(DaemonTest, ClientsOnlyReachFilesTheyCouldOpenThemselves) {
  Start();
  // Root may read the secret through the daemon...
  Client root(socket_);
  EXPECT_EQ(root.Call({{"op", "info"}, {"args", {secret_}}})["ok"], true);
  // ...nobody may not, and learns nothing about it beyond "Permission denied".
  const std::string socket = socket_, secret = secret_, image = image_;
  EXPECT_EQ(AsNobody([&] {
              Client c(socket);
              const Json denied = c.Call({{"op", "info"}, {"args", {secret}}});
              const std::string err = denied.value("stderr", "");
              if (denied["ok"] != false || err.find("Permission denied") == std::string::npos ||
                  denied.value("stdout", "") != "") {
                return 1;
              }
              // A readable image works for nobody too.
              return c.Call({{"op", "info"}, {"args", {image}}})["ok"] == true ? 0 : 2;
            }),
            0);
}

TEST_F(DaemonTest, ConcurrencyAndQueueLimitsAnswerBusy) {
  Start({"--max-concurrent", "1", "--max-queue", "1"});
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&] {
      Client c(socket_);
      const Json r = c.Call({{"op", "info"}, {"args", {image_}}});
      if (r["ok"] == true) ++ok;
      else if (r["error"]["code"] == "busy") ++busy;
      else ++other;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok + busy, 24);
  EXPECT_EQ(other, 0);
  EXPECT_GE(ok, 2);
  EXPECT_GE(busy, 1);
}

TEST_F(DaemonTest, LoadWithManyClientsLosesNothingAndLeaksNothing) {
  Start({"--max-concurrent", "4", "--max-queue", "256"});
  int fds_before = 0;
  SettledWorkers(2, &fds_before);
  const long rss_before = ResidentKib(pid_);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client c(socket_);
      for (int i = 0; i < 25; ++i) {
        const Json r = c.Call({{"id", t * 100 + i}, {"op", "info"}, {"args", {image_}}});
        if (r["ok"] == true && r["id"] == t * 100 + i) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 200);
  int fds_after = 0;
  const Json workers = SettledWorkers(2, &fds_after);
  EXPECT_GE(workers["started"], 202) << "every request had a worker of its own";
  EXPECT_EQ(fds_after, fds_before);
  // Workers are separate processes; the daemon itself keeps only counters and a bounded
  // latency window (thread stacks and allocator caches account for the slack).
  EXPECT_LT(ResidentKib(pid_) - rss_before, 16 * 1024);
  Client c(socket_);
  const Json status = c.Call({{"op", "status"}});
  EXPECT_EQ(status["result"]["counters"]["requests"], 200);
  EXPECT_EQ(status["result"]["in_flight"], 0);
}

TEST_F(DaemonTest, DeadlinesDisconnectsAndSlowClientsDoNotHurtOthers) {
  Start({"--max-concurrent", "2"});
  // A slow client that never finishes its line holds no slot.
  Client slow(socket_);
  slow.SendRaw("{\"op\": \"info\", ");
  // A client that leaves mid-request frees its slot.
  {
    Client gone(socket_);
    gone.SendRaw(Json({{"op", "info"}, {"args", {image_}}}).dump() + "\n");
  }
  // A request past its deadline is stopped and answered as such.
  Client c(socket_);
  const Json late = c.Call({{"op", "info"}, {"args", {image_}}, {"deadline_ms", 1}});
  EXPECT_EQ(late["error"]["code"], "timeout") << late.dump();
  // Everyone else is served normally.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.Call({{"op", "info"}, {"args", {image_}}})["ok"], true);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(c.Call({{"op", "status"}})["result"]["in_flight"], 0);
}

TEST_F(DaemonTest, AllowFlagWidensWhereBackingFilesMayLive) {
  // Not below the overlay's directory (which is always allowed).
  const fs::path elsewhere =
      fs::temp_directory_path() / ("instard-elsewhere-" + std::to_string(::getpid()));
  fs::create_directories(elsewhere);
  const std::string base = (elsewhere / "base.qcow2").string();
  const std::string overlay = (dir_ / "overlay.qcow2").string();
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 " + base + " 16M").c_str()), 0);
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 -F qcow2 -b " + base + " " + overlay).c_str()), 0);
  const Json request = {{"op", "info"}, {"args", {"--backing-chain", overlay}}};
  Start();
  {
    Client c(socket_);
    EXPECT_EQ(c.Call(request)["ok"], false) << "outside the image's directory without --allow";
  }
  Stop();
  Start({"--allow", elsewhere.string()});
  Client c(socket_);
  const Json reply = c.Call(request);
  EXPECT_EQ(reply["ok"], true) << reply.dump();
  fs::remove_all(elsewhere);
}

TEST_F(DaemonTest, SigtermDrainsAndSighupReloads) {
  const std::string config = (dir_ / "instard.conf").string();
  std::ofstream(config) << "max-concurrent 2\n";
  Start({"--config", config});
  Client c(socket_);
  EXPECT_EQ(c.Call({{"op", "status"}})["result"]["limits"]["max_concurrent"], 2);
  std::ofstream(config) << "max-concurrent 3\n# comment\ndeadline-ms 5000\nspare-workers 1\n";
  ::kill(pid_, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const Json reloaded = c.Call({{"op", "status"}});
  EXPECT_EQ(reloaded["result"]["limits"]["max_concurrent"], 3);
  EXPECT_EQ(reloaded["result"]["limits"]["deadline_ms"], 5000);
  EXPECT_EQ(reloaded["result"]["limits"]["spare_workers"], 1);
  SettledWorkers(1);  // the surplus idle worker was let go
  // A request already sent is answered, never dropped: done if it was admitted before the
  // signal, "shutting_down" if not. Then the daemon exits cleanly and the socket is gone.
  c.SendRaw(Json({{"id", 9}, {"op", "info"}, {"args", {image_}}}).dump() + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(pid_, SIGTERM);
  const Json last = c.Receive();
  ASSERT_TRUE(last.is_object());
  EXPECT_EQ(last["id"], 9);
  EXPECT_TRUE(last["ok"] == true || last["error"]["code"] == "shutting_down") << last.dump();
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(fs::exists(socket_));
}

TEST_F(DaemonTest, PooledWorkersRunAsTheClientAndAreReplaced) {
  Start({"--spare-workers", "2"});
  const Json before = SettledWorkers(2);
  // Both requests go to workers started before the client was known; each still runs with
  // the client's credentials.
  const std::string socket = socket_, secret = secret_, image = image_;
  EXPECT_EQ(AsNobody([&] {
              Client c(socket);
              const Json denied = c.Call({{"op", "info"}, {"args", {secret}}});
              if (denied["ok"] != false ||
                  denied.value("stderr", "").find("Permission denied") == std::string::npos) {
                return 1;
              }
              return c.Call({{"op", "info"}, {"args", {image}}})["ok"] == true ? 0 : 2;
            }),
            0);
  Client root(socket_);
  EXPECT_EQ(root.Call({{"op", "info"}, {"args", {secret_}}})["ok"], true);
  const Json after = SettledWorkers(2);
  EXPECT_EQ(after["started"].get<int>() - before["started"].get<int>(), 3)
      << "each request used up one worker and one replacement was started";
  EXPECT_EQ(after["died_idle"], 0);
}

TEST_F(DaemonTest, IdleWorkersThatDieAreReplacedAndTakeNoRequestDown) {
  Start({"--spare-workers", "2"});
  SettledWorkers(2);
  const std::vector<pid_t> idle = ChildrenOf(pid_);
  ASSERT_EQ(idle.size(), 2u);
  for (pid_t worker : idle) ASSERT_EQ(::kill(worker, SIGKILL), 0);
  // A request right away may meet a dead worker before the pool notices: it takes another.
  Client c(socket_);
  for (int i = 0; i < 3; ++i) {
    const Json reply = c.Call({{"op", "info"}, {"args", {image_}}});
    EXPECT_EQ(reply["ok"], true) << reply.dump();
  }
  const Json workers = SettledWorkers(2);
  EXPECT_EQ(workers["died_idle"], 2);
  for (pid_t worker : idle) EXPECT_FALSE(Exists(worker)) << "reaped";
}

TEST_F(DaemonTest, IdleWorkersHoldNothingOfTheDaemonsOrOtherClients) {
  Start({"--spare-workers", "1"});
  // A request with a passed descriptor, and a connection left open meanwhile.
  Client open_connection(socket_);
  const int fd = ::open(image_.c_str(), O_RDONLY);
  EXPECT_EQ(open_connection
                .Call({{"op", "info"}, {"args", {"x.img"}}, {"files", {{"x.img", 0}}}}, {fd})["ok"],
            true);
  ::close(fd);
  SettledWorkers(1);
  const std::vector<pid_t> idle = ChildrenOf(pid_);
  ASSERT_EQ(idle.size(), 1u);
  // stdin on /dev/null, stdout and stderr on their pipes, the control socket, the daemon's log;
  // everything else is the sandbox's own (KVM descriptors, guest RAM memfds).
  const fs::path fds = "/proc/" + std::to_string(idle[0]) + "/fd";
  int sockets = 0;
  for (const auto& entry : fs::directory_iterator(fds)) {
    const int number = std::stoi(entry.path().filename().string());
    const std::string target = fs::read_symlink(entry.path()).string();
    SCOPED_TRACE(std::to_string(number) + " -> " + target);
    if (number == 0) {
      EXPECT_EQ(target, "/dev/null");
    } else if (number <= 2) {
      EXPECT_EQ(target.rfind("pipe:", 0), 0u);
    } else if (number == 4) {
      EXPECT_EQ(target, (dir_ / "log").string());
    } else if (target.rfind("socket:", 0) == 0) {
      ++sockets;
    } else {
      EXPECT_TRUE(target.rfind("anon_inode:", 0) == 0 || target == "/dev/kvm" ||
                  target.rfind("/memfd:instar-", 0) == 0);
    }
  }
  EXPECT_EQ(sockets, 1) << "only its own control socket";
}

TEST_F(DaemonTest, SigtermWithIdleWorkersExitsAndLeavesNoWorkerBehind) {
  Start({"--spare-workers", "4"});
  SettledWorkers(4);
  const std::vector<pid_t> idle = ChildrenOf(pid_);
  ASSERT_EQ(idle.size(), 4u);
  EXPECT_EQ(Stop(), 0) << "exit status 0 after SIGTERM";  // Stop waits for the daemon
  for (pid_t worker : idle) EXPECT_FALSE(Exists(worker));
}

TEST_F(DaemonTest, WithoutSpareWorkersEachRequestStartsItsOwn) {
  Start({"--spare-workers", "0"});
  Client c(socket_);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.Call({{"op", "info"}, {"args", {image_}}})["ok"], true);
  const Json workers = SettledWorkers(0);
  EXPECT_EQ(workers["started"], 3);
  EXPECT_TRUE(ChildrenOf(pid_).empty());
}

}  // namespace
