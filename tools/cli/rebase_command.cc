#include "tools/cli/rebase_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/progress_output.h"
#include "vmm/base/std_stream.h"
#include "vmm/operations/rebase_request.h"

namespace instar::cli {
namespace {



void PrintHelp() {
  Emit(stdout, "usage: instar rebase [-f FMT] [-t CACHE] [-T SRC_CACHE] [-p] [-q] [-U] [-u] "
      "-b BACKING [-F BACKING_FMT] FILENAME\n"
      "\n"
      "Changes the backing file of an image as qemu-img rebase does, parsing and changing it\n"
      "inside a throw-away KVM VM. Without -u, what differs between the old and the new\n"
      "backing chain is first copied into the image, so its content does not change.\n"
      "\n"
      "  -f FMT          image format (raw, qcow2, vmdk); probed when absent\n"
      "  -b BACKING      the new backing file (\"\" makes the image standalone)\n"
      "  -F BACKING_FMT  the new backing file's format (needed with a non-empty -b)\n"
      "  -u              unsafe: only rewrite the backing file reference\n"
      "  -p              show progress\n"
      "  -q              quiet\n"
      "  -U              open backing files without taking QEMU's image locks\n"
      "  -t CACHE        the image's cache mode: unsafe skips flushes, the others keep them\n"
      "  -T CACHE        accepted as qemu-img does (backing files are only read)\n"
      "  --allow-dir DIR also let backing files live in DIR (repeatable)\n"
      "  --verbose       show the guest's debug text and timings on stderr\n"
      "  --deadline MS   stop the guest after MS milliseconds (INSTAR_DEADLINE_MS)\n"
      "  --max-exits N   stop the guest after N exits (INSTAR_MAX_EXITS)\n");
}

}  // namespace

int RebaseCommand(int argc, char** argv) {
  std::string format_name;
  std::string cache = "writeback";
  std::string source_cache = "writeback";
  bool quiet = false;
  bool progress = false;
  vmm::RebaseRequest request;
  GuestOptions guest = GuestOptionsFromEnvironment();
  const std::optional<int> stop = ParseOptions(
      argc, argv, "hf:F:b:upt:T:qU",
      {{"help", no_argument, nullptr, 'h'},
       // Long spellings of the short options, for the daemon's object arguments.
       {"format", required_argument, nullptr, 'f'},
       {"backing", required_argument, nullptr, 'b'},
       {"backing-format", required_argument, nullptr, 'F'},
       {"unsafe", no_argument, nullptr, 'u'},
       {"progress", no_argument, nullptr, 'p'},
       {"quiet", no_argument, nullptr, 'q'},
       {"cache", required_argument, nullptr, 't'},
       {"source-cache", required_argument, nullptr, 'T'},
       {"force-share", no_argument, nullptr, 'U'}},
      &guest, [&](int c, const char* arg) -> std::optional<int> {
        switch (c) {
          case 'h': PrintHelp(); return kExitOk;
          case 'f': format_name = arg; break;
          case 'F': request.backing_format = arg; break;
          case 'b': request.backing = arg; break;
          case 'u': request.unsafe = true; break;
          case 'p': progress = true; break;
          case 't': cache = arg; break;
          case 'T': source_cache = arg; break;
          case 'q': quiet = true; break;
          case 'U': request.force_share = true; break;
        }
        return std::nullopt;
      });
  if (stop) return *stop;
  if (quiet) progress = false;
  if (optind != argc - 1) return UsageError("Expecting one image file name");
  if (!request.unsafe && !request.backing) {
    return UsageError("Must specify backing file (-b) or use unsafe mode (-u)");
  }
  const std::string filename = argv[optind];
  const std::optional<bool> flushes = CacheModeFlushes(cache);
  if (!flushes) {
    PrintError("Invalid cache option: " + cache);
    return kExitError;
  }
  request.hooks.durable_writes = *flushes;
  if (!CacheModeFlushes(source_cache)) {
    PrintError("Invalid source cache option: " + source_cache);
    return kExitError;
  }
  const auto allowed_dirs = AllowedDirsFor(filename, guest);
  if (!allowed_dirs) return kExitError;
  request.allowed_dirs = *allowed_dirs;
  request.path = filename;
  request.limits = guest.limits;
  if (!ResolveFormatName(filename, format_name, &request.format)) return kExitError;
  ShowGuestText(guest, &request.hooks);
  ProgressOutput printer(progress, /*min_step=*/2.f);
  printer.Start();
  if (progress) {
    request.hooks.on_progress = [&printer](uint64_t done, uint64_t total) {
      printer.Update(done, total);
    };
  }

  const std::unique_ptr<vmm::Sandbox> sandbox = OpenSandboxOrReport();
  if (sandbox == nullptr) return kExitError;
  auto outcome = vmm::RunRebase(*sandbox, request);
  if (!outcome.ok()) {
    ReportOpenError(filename, outcome.status());
    return kExitError;
  }
  if (guest.verbose) {
    PrintTimings(outcome->timings);
  }
  if (request.format == abi::ImageFormat::kAuto && outcome->result &&
      outcome->result->format == static_cast<uint32_t>(abi::ImageFormat::kRaw)) {
    PrintRawProbeWarning(filename);
  }
  if (outcome->new_backing_failure) {
    const vmm::NewBackingFailure& f = *outcome->new_backing_failure;
    PrintError("Could not open new backing file '" + *request.backing + "': " +
               OpenErrorText(f.path, f.status));
    return kExitError;
  }
  if (outcome->refusal) {
    PrintRefusal(filename, outcome->refusal->lines, outcome->refusal->while_opening);
    return kExitError;
  }
  printer.End(/*opened=*/true, /*completed=*/true);
  return kExitOk;
}

}  // namespace instar::cli
