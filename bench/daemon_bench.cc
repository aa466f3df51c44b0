// Daemon benchmark (not a test): request latency (p50, p99) and throughput of `info` through
// instard with 1 and 8 concurrent clients, beside `qemu-img info` wall time, one run.
//
// usage: daemon_bench SOCKET IMAGE [REQUESTS_PER_CLIENT]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "vmm/daemon/line_client.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Latencies of `count` sequential info requests on one connection.
std::vector<double> RunClient(const std::string& socket, const std::string& image, int count) {
  auto client = instar::vmm::daemon::LineClient::Connect(socket);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().message().c_str());
    std::exit(1);
  }
  std::vector<double> latencies;
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    auto reply = client->Call({{"op", "info"}, {"args", {image}}});
    if (!reply.ok() || (*reply)["ok"] != true) {
      std::fprintf(stderr, "request failed\n");
      std::exit(1);
    }
    latencies.push_back(Ms(t0, Clock::now()));
  }
  return latencies;
}

double QemuImgInfoMs(const std::string& image) {
  char* argv[] = {const_cast<char*>("qemu-img"), const_cast<char*>("info"),
                  const_cast<char*>(image.c_str()), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  const auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv, environ) != 0) std::exit(1);
  int status;
  waitpid(pid, &status, 0);
  posix_spawn_file_actions_destroy(&actions);
  return Ms(t0, Clock::now());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: daemon_bench SOCKET IMAGE [REQUESTS_PER_CLIENT]\n");
    return 2;
  }
  const std::string socket = argv[1], image = argv[2];
  const int per_client = argc > 3 ? std::atoi(argv[3]) : 100;
  RunClient(socket, image, 5);  // warm-up

  std::vector<double> qemu;
  for (int i = 0; i < 30; ++i) qemu.push_back(QemuImgInfoMs(image));
  const double qemu_p50 = Percentile(qemu, 0.5);
  std::printf("qemu-img info (process per call): p50 %.2f ms\n\n", qemu_p50);
  std::printf("%-8s %10s %10s %10s %14s %16s\n", "clients", "requests", "p50 ms", "p99 ms",
              "requests/s", "p50 / qemu-img");
  for (int clients : {1, 8}) {
    std::vector<std::vector<double>> per(clients);
    std::vector<std::thread> threads;
    const auto t0 = Clock::now();
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] { per[c] = RunClient(socket, image, per_client); });
    }
    for (auto& t : threads) t.join();
    const double seconds = Ms(t0, Clock::now()) / 1000;
    std::vector<double> all;
    for (const auto& v : per) all.insert(all.end(), v.begin(), v.end());
    const double p50 = Percentile(all, 0.5);
    std::printf("%-8d %10zu %10.2f %10.2f %14.1f %16.2f\n", clients, all.size(), p50,
                Percentile(all, 0.99), all.size() / seconds, p50 / qemu_p50);
  }
  return 0;
}
