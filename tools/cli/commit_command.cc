#include "tools/cli/commit_command.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/progress_output.h"
#include "tools/cli/resize_size.h"
#include "vmm/base/std_stream.h"
#include "vmm/operations/commit_request.h"

namespace instar::cli {
namespace {

// Commit moves every byte the top owns through the guest: allow far longer than info does (a
// guest that takes longer, or --deadline / INSTAR_DEADLINE_MS, is stopped).
constexpr std::chrono::milliseconds kCommitDeadline{1800000};

void PrintHelp() {
  Emit(stdout, "usage: instar commit [-q] [-f FMT] [-t CACHE] [-b BASE] [-r RATE] [-d] [-p] FILENAME\n"
      "\n"
      "Writes what FILENAME holds over its backing file into the backing file (or, with -b,\n"
      "into BASE further down the chain) as qemu-img commit does, reading and writing the\n"
      "images inside a throw-away KVM VM.\n"
      "\n"
      "  -f, --format FMT       format of FILENAME (raw, qcow2, vmdk); probed when absent\n"
      "  -b, --base BASE        commit into BASE, a file in FILENAME's backing chain (implies -d)\n"
      "  -d, --drop             leave FILENAME as it is (by default it is emptied)\n"
      "  -p, --progress         show progress\n"
      "  -q, --quiet            quiet\n"
      "  -t, --cache CACHE      none, writeback (default), unsafe (no flushes),\n"
      "                         directsync, writethrough\n"
      "  -r, --rate-limit RATE  accepted for compatibility; instar does not throttle\n"
      "  --allow-dir DIR        also let backing files live in DIR (repeatable)\n"
      "  --verbose              show the guest's debug text and timings on stderr\n"
      "  --deadline MS          stop the guest after MS milliseconds (INSTAR_DEADLINE_MS;\n"
      "                         default 30 minutes)\n"
      "  --max-exits N          stop the guest after N exits (INSTAR_MAX_EXITS)\n");
}

// qemu-img's cvtnum("rate limit", ...): a size with qemu's suffixes, 0..INT64_MAX.
bool CheckRateLimit(const std::string& text) {
  const ParsedSize size = ParseResizeSize(text);
  if (size.status == SizeParseStatus::kInvalid || size.sign == SizeSign::kMinus) {
    PrintError("Invalid rate limit specified. You may use k, M, G, T, P or E suffixes for");
    PrintError("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    return false;
  }
  if (size.status == SizeParseStatus::kOutOfRange || size.bytes > INT64_MAX) {
    PrintError("Invalid rate limit specified. Must be between 0 and 9223372036854775807.");
    return false;
  }
  return true;
}

}  // namespace

int CommitCommand(int argc, char** argv) {
  std::string format_name;
  std::string cache = "writeback";
  bool quiet = false;
  vmm::CommitRequest request;
  GuestOptions guest = GuestOptionsFromEnvironment();
  if (std::getenv("INSTAR_DEADLINE_MS") == nullptr) guest.limits.deadline = kCommitDeadline;
  const std::optional<int> stop = ParseOptions(
      argc, argv, "f:ht:b:dpqr:",
      {{"help", no_argument, nullptr, 'h'},
       {"format", required_argument, nullptr, 'f'},
       {"base", required_argument, nullptr, 'b'},
       {"drop", no_argument, nullptr, 'd'},
       {"progress", no_argument, nullptr, 'p'},
       {"quiet", no_argument, nullptr, 'q'},
       {"cache", required_argument, nullptr, 't'},
       {"rate-limit", required_argument, nullptr, 'r'}},
      &guest, [&](int c, const char* arg) -> std::optional<int> {
        switch (c) {
          case 'h': PrintHelp(); return kExitOk;
          case 'f': format_name = arg; break;
          case 't': cache = arg; break;
          case 'b': request.base = arg; break;
          case 'd': request.drop = true; break;
          case 'p': request.progress = true; break;
          case 'q': quiet = true; break;
          case 'r':
            if (!CheckRateLimit(arg)) return kExitError;
            break;
        }
        return std::nullopt;
      });
  if (stop) return *stop;
  // Progress is not shown in quiet mode.
  if (quiet) request.progress = false;
  if (optind != argc - 1) return UsageError("Expecting one image file name");
  const std::string filename = argv[optind];
  const std::optional<bool> flushes = CacheModeFlushes(cache);
  if (!flushes) {
    PrintError("Invalid cache option: " + cache);
    return kExitError;
  }
  request.hooks.durable_writes = *flushes;
  auto allowed = AllowedDirsFor(filename, guest);
  if (!allowed) return kExitError;
  request.allowed_dirs = std::move(*allowed);
  request.path = filename;
  request.limits = guest.limits;
  if (!ResolveFormatName(filename, format_name, &request.format)) return kExitError;
  ShowGuestText(guest, &request.hooks);

  ProgressOutput progress(request.progress, /*min_step=*/1.f);
  if (request.progress) {
    request.hooks.on_progress = [&progress](uint64_t done, uint64_t total) {
      progress.Update(done, total);
    };
  }
  const std::unique_ptr<vmm::Sandbox> sandbox = OpenSandboxOrReport();
  if (sandbox == nullptr) return kExitError;
  progress.Start();
  auto outcome = vmm::RunCommit(*sandbox, request);
  progress.End(outcome.ok(), outcome.ok() && outcome->refusal.empty());
  if (!outcome.ok()) {
    ReportOpenError(filename, outcome.status());
    return kExitError;
  }
  if (guest.verbose) PrintTimings(outcome->timings);
  if (!outcome->refusal.empty()) {
    for (const std::string& line : outcome->refusal) PrintError(line);
    return kExitError;
  }
  if (!quiet) Emit(stdout, "Image committed.\n");
  return kExitOk;
}

}  // namespace instar::cli
