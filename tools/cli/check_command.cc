#include "tools/cli/check_command.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tools/cli/check_output.h"
#include "tools/cli/cli_common.h"
#include "vmm/base/std_stream.h"
#include "vmm/base/text_format.h"
#include "vmm/operations/check_messages.h"
#include "vmm/operations/check_request.h"

namespace instar::cli {
namespace {

enum LongOnly {
  kOptOutput = kFirstCommandOption,
  kOptMaxClustersPerPass,
};

constexpr int kExitCorruptions = 2;
constexpr int kExitLeaks = 3;
constexpr int kExitNoChecks = 63;
// Checking reads every metadata cluster of the image: allow far longer than info does.
constexpr std::chrono::milliseconds kCheckDeadline{600000};

void PrintHelp() {
  Emit(stdout, "usage: instar check [-f FMT] [--output=human|json] [-r leaks|all] [-q] [-U] FILENAME\n"
      "\n"
      "Checks an image for consistency like qemu-img check, parsing it inside a throw-away\n"
      "KVM VM. Exit codes: 0 clean, 1 check failed, 2 corruptions, 3 leaks, 63 format\n"
      "without checks.\n"
      "\n"
      "  -f, --format FMT     image format (raw, qcow2, vmdk); probed when absent\n"
      "  --output FMT         human (default) or json\n"
      "  -r, --repair MODE    leaks: repair leaked clusters; all: repair every error\n"
      "  -q, --quiet          no report on stdout\n"
      "  -U, --force-share    accepted for compatibility (refused with -r)\n"
      "  -T CACHE             accepted for compatibility\n"
      "  --allow-dir DIR      also let backing files live in DIR (repeatable; qemu-img check\n"
      "                       opens the backing chain, and so does instar, in fresh VMs)\n"
      "  --verbose            show the guest's debug text and timings on stderr\n"
      "  --deadline MS        stop the guest after MS milliseconds (INSTAR_DEADLINE_MS)\n"
      "  --max-exits N        stop the guest after N exits (INSTAR_MAX_EXITS)\n"
      "  --max-clusters-per-pass N  cap one pass of the in-guest count (testing)\n");
}

}  // namespace

int CheckCommand(int argc, char** argv) {
  std::string format_name, output = "human";
  bool quiet = false, force_share = false;
  vmm::CheckRequest request;
  GuestOptions guest = GuestOptionsFromEnvironment();
  if (std::getenv("INSTAR_DEADLINE_MS") == nullptr) guest.limits.deadline = kCheckDeadline;
  const std::optional<int> stop = ParseOptions(
      argc, argv, "hf:r:T:qU",
      {{"help", no_argument, nullptr, 'h'},
       {"format", required_argument, nullptr, 'f'},
       {"repair", required_argument, nullptr, 'r'},
       {"output", required_argument, nullptr, kOptOutput},
       {"force-share", no_argument, nullptr, 'U'},
       {"quiet", no_argument, nullptr, 'q'},
       {"max-clusters-per-pass", required_argument, nullptr, kOptMaxClustersPerPass}},
      &guest, [&](int c, const char* arg) -> std::optional<int> {
        uint64_t v = 0;
        switch (c) {
          case 'h': PrintHelp(); return kExitOk;
          case 'f': format_name = arg; break;
          case 'r':
            if (std::string(arg) == "leaks") {
              request.repair = abi::CheckRepair::kLeaks;
            } else if (std::string(arg) == "all") {
              request.repair = abi::CheckRepair::kAll;
            } else {
              return UsageError(std::string("Unknown option value for -r (expecting 'leaks' or "
                                            "'all'): ") + arg);
            }
            break;
          case 'T': break;
          case 'q': quiet = true; break;
          case 'U': force_share = true; break;
          case kOptOutput: output = arg; break;
          case kOptMaxClustersPerPass:
            if (!ParseLimit(arg, &v)) return UsageError("invalid --max-clusters-per-pass value");
            request.max_clusters_per_pass = v;
            break;
        }
        return std::nullopt;
      });
  if (stop) return *stop;
  if (output != "human" && output != "json") {
    PrintError("--output must be used with human or json as argument.");
    return kExitError;
  }
  if (optind != argc - 1) return UsageError("Expecting one image file name");
  const std::string filename = argv[optind];
  if (force_share && request.repair != abi::CheckRepair::kNone) {
    PrintError("Could not open '" + filename +
               "': force-share=on can only be used with read-only images");
    return kExitError;
  }
  const auto allowed_dirs = AllowedDirsFor(filename, guest);
  if (!allowed_dirs) return kExitError;
  request.path = filename;
  request.force_share = force_share;
  request.limits = guest.limits;
  request.allowed_dirs = *allowed_dirs;
  if (!ResolveFormatName(filename, format_name, &request.format)) return kExitError;
  ShowGuestText(guest, &request.hooks);

  const std::unique_ptr<vmm::Sandbox> sandbox = OpenSandboxOrReport();
  if (sandbox == nullptr) return kExitError;
  auto outcome = vmm::RunCheck(*sandbox, request);
  if (!outcome.ok()) {
    ReportOpenError(filename, outcome.status());
    return kExitError;
  }
  Emit(stderr, outcome->messages);
  if (outcome->findings_truncated) {
    PrintError("further findings were not reported (more than instar relays)");
  }
  if (guest.verbose) PrintTimings(outcome->timings, outcome->result.passes);
  if (outcome->format_unsupported) {
    if (request.format == abi::ImageFormat::kAuto && request.repair != abi::CheckRepair::kNone &&
        outcome->unsupported_format == probe::Format::kRaw) {
      // qemu warns when it opens a probed raw image for writing.
      PrintRawProbeWarning(filename);
    }
    PrintError("This image format does not support checks");
    return kExitNoChecks;
  }
  const abi::CheckResult& r = outcome->result;
  const auto failure = static_cast<abi::CheckFailure>(r.failure);
  if (failure != abi::CheckFailure::kNone) {
    PrintError(vmm::DescribeCheckFailure(failure));
    return kExitError;
  }
  if (!quiet) {
    const std::string text = output == "json" ? CheckJson(filename, r)
                                              : CheckRepairBanner(r) + CheckHuman(r);
    Emit(stdout, text);
  }
  if (r.check_errors != 0) {
    PrintError("Check failed");
    return kExitError;
  }
  if (r.corruptions != 0) return kExitCorruptions;
  if (r.leaks != 0) return kExitLeaks;
  return kExitOk;
}

}  // namespace instar::cli
