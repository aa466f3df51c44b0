// Foundation benchmark (not a test): machine setup and lifecycle times of both sandboxes from
// the launcher's own timestamps, then `instar info` (both sandboxes) against `qemu-img info` as
// whole processes on the same image, interleaved, one run. Prints medians and ratios.
//
// usage: vm_lifecycle_bench INSTAR_BINARY IMAGE [RUNS]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <initializer_list>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/guests/noop_image.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/launcher/sandbox_factory.h"

extern char** environ;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double P90(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[(v.size() * 9) / 10 < v.size() ? (v.size() * 9) / 10 : v.size() - 1];
}

// Wall time of one process run with stdout/stderr sent to /dev/null, in microseconds.
double TimeProcess(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid;
  if (posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    std::fprintf(stderr, "cannot run %s\n", args[0]);
    std::exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const auto t1 = std::chrono::steady_clock::now();
  posix_spawn_file_actions_destroy(&actions);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s failed\n", args[0]);
    std::exit(1);
  }
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: vm_lifecycle_bench INSTAR_BINARY IMAGE [RUNS]\n");
    return 2;
  }
  const std::string instar = argv[1], image = argv[2];
  const int runs = argc > 3 ? std::atoi(argv[3]) : 50;

  for (auto choice : {instar::vmm::SandboxChoice::kKvm, instar::vmm::SandboxChoice::kProcess}) {
    auto sandbox = instar::vmm::OpenSandbox(choice, nullptr);
    if (!sandbox.ok()) {
      std::fprintf(stderr, "%s\n", sandbox.status().message().c_str());
      return 1;
    }
    std::vector<double> setup, first_exit, total;
    for (int i = 0; i < runs + 1; ++i) {
      instar::vmm::DeviceSet devices;
      instar::vmm::OperationLaunch launch;
      launch.operation = &instar::images::noop;
      auto outcome = instar::vmm::RunOperation(**sandbox, devices, launch);
      if (!outcome.ok()) {
        std::fprintf(stderr, "noop guest failed: %s\n", outcome.status().message().c_str());
        return 1;
      }
      if (i == 0) continue;  // the first machine of a process pays one-off kernel costs
      setup.push_back(outcome->timings.setup_us);
      first_exit.push_back(outcome->timings.first_exit_us);
      total.push_back(outcome->timings.total_us);
    }
    std::printf("%s sandbox, no-op guest, %d runs in one process (median / p90, us):\n",
                (*sandbox)->name(), runs);
    std::printf("  create -> ready to run (machine built, images loaded)  %8.1f / %8.1f\n",
                Median(setup), P90(setup));
    std::printf("  create -> first guest exit (runtime ran, op called)    %8.1f / %8.1f\n",
                Median(first_exit), P90(first_exit));
    std::printf("  create -> torn down (whole lifecycle)                  %8.1f / %8.1f\n\n",
                Median(total), P90(total));
  }

  std::vector<double> kvm, process, qemu;
  for (int i = 0; i < runs; ++i) {
    kvm.push_back(TimeProcess({instar, "--sandbox=kvm", "info", image}));
    process.push_back(TimeProcess({instar, "--sandbox=process", "info", image}));
    qemu.push_back(TimeProcess({"qemu-img", "info", image}));
  }
  const double q = Median(qemu);
  std::printf("info on %s, %d interleaved runs each (median wall time, us; ratio to qemu-img):\n",
              image.c_str(), runs);
  std::printf("  instar --sandbox=kvm info      %8.1f  %5.2f\n", Median(kvm), Median(kvm) / q);
  std::printf("  instar --sandbox=process info  %8.1f  %5.2f\n", Median(process),
              Median(process) / q);
  std::printf("  qemu-img info                  %8.1f  %5.2f\n", q, 1.0);
  return 0;
}
