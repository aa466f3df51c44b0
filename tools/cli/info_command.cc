#include "tools/cli/info_command.h"

#include <getopt.h>

#include <cstdio>
#include <string>

#include "tools/cli/cli_common.h"
#include "tools/cli/info_output.h"
#include "vmm/operations/info_request.h"

namespace instar::cli {
namespace {

enum LongOnly {
  kOptOutput = 256,
  kOptBackingChain,
  kOptObject,
  kOptImageOpts,
  kOptVerbose,
  kOptDeadline,
  kOptMaxExits,
  kOptSandbox,
};

void PrintHelp() {
  std::printf(
      "usage: instar info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILENAME\n"
      "\n"
      "Prints what qemu-img info prints, parsing the image inside a throw-away KVM VM.\n"
      "\n"
      "  -f, --format FMT     image format (raw, qcow2, vmdk); probed when absent\n"
      "  --output FMT         human (default) or json\n"
      "  -U, --force-share    open even if QEMU holds the image (takes no image locks)\n"
      "  --verbose            show the guest's debug text and timings on stderr\n"
      "  --deadline MS        stop the guest after MS milliseconds (INSTAR_DEADLINE_MS)\n"
      "  --max-exits N        stop the guest after N exits (INSTAR_MAX_EXITS)\n"
      "  --sandbox KIND       kvm, process or auto (INSTAR_SANDBOX; default auto)\n");
}

}  // namespace

int InfoCommand(int argc, char** argv) {
  static const option kOptions[] = {
      {"help", no_argument, nullptr, 'h'},
      {"format", required_argument, nullptr, 'f'},
      {"output", required_argument, nullptr, kOptOutput},
      {"backing-chain", no_argument, nullptr, kOptBackingChain},
      {"object", required_argument, nullptr, kOptObject},
      {"image-opts", no_argument, nullptr, kOptImageOpts},
      {"force-share", no_argument, nullptr, 'U'},
      {"verbose", no_argument, nullptr, kOptVerbose},
      {"deadline", required_argument, nullptr, kOptDeadline},
      {"max-exits", required_argument, nullptr, kOptMaxExits},
      {"sandbox", required_argument, nullptr, kOptSandbox},
      {nullptr, 0, nullptr, 0},
  };
  std::string format_name, output = "human", sandbox_choice;
  bool force_share = false;
  bool verbose = false;
  vmm::VmLimits limits = LimitsFromEnvironment();
  opterr = 0;
  optind = 1;
  for (;;) {
    const int c = getopt_long(argc, argv, ":f:hU", kOptions, nullptr);
    if (c == -1) break;
    uint64_t v = 0;
    switch (c) {
      case 'h': PrintHelp(); return kExitOk;
      case 'f': format_name = optarg; break;
      case 'U': force_share = true; break;
      case kOptOutput: output = optarg; break;
      case kOptBackingChain:
        PrintError("--backing-chain is not supported yet");
        return kExitError;
      case kOptObject:
      case kOptImageOpts:
        PrintError("--object and --image-opts are not supported by instar");
        return kExitError;
      case kOptVerbose: verbose = true; break;
      case kOptDeadline:
        if (!ParseLimit(optarg, &v)) return UsageError("invalid --deadline value");
        limits.deadline = std::chrono::milliseconds(v);
        break;
      case kOptMaxExits:
        if (!ParseLimit(optarg, &v)) return UsageError("invalid --max-exits value");
        limits.max_exits = v;
        break;
      case kOptSandbox: sandbox_choice = optarg; break;
      case ':': return OptionError(optopt, argv[optind - 1], true);
      default: return OptionError(optopt, argv[optind - 1], false);
    }
  }
  if (optind != argc - 1) return UsageError("Expecting one image file name");
  const std::string filename = argv[optind];
  if (output != "human" && output != "json") {
    PrintError("--output must be used with human or json as argument.");
    return kExitError;
  }

  vmm::InfoRequest request;
  request.path = filename;
  request.force_share = force_share;
  request.limits = limits;
  if (!format_name.empty()) {
    const auto format = ParseFormatName(format_name);
    if (!format) {
      PrintError("Could not open '" + filename + "': Unknown driver '" + format_name + "'");
      return kExitError;
    }
    request.format = *format;
  }
  if (verbose) {
    request.hooks.on_debug_text = [](std::string_view text) {
      std::fprintf(stderr, "guest: %.*s", static_cast<int>(text.size()), text.data());
    };
  }

  const std::unique_ptr<vmm::Sandbox> sandbox = OpenSandboxOrReport(sandbox_choice);
  if (sandbox == nullptr) return kExitError;
  auto info = vmm::RunInfo(*sandbox, request);
  if (!info.ok()) {
    const Status& s = info.status();
    // File-open errors repeat the name, as qemu-img's do.
    const bool in_use = s.message().rfind("Failed to get ", 0) == 0;
    const bool open_error = !in_use && (s.code() == StatusCode::kNotFound ||
                                        s.code() == StatusCode::kPermissionDenied ||
                                        s.code() == StatusCode::kIoError);
    if (s.code() == StatusCode::kInvalidArgument && s.message() == "Is a directory") {
      PrintError("Could not open '" + filename + "': 'file' driver requires '" + filename +
                 "' to be a regular file");
    } else if (open_error) {
      PrintError("Could not open '" + filename + "': Could not open '" + filename +
                 "': " + s.message());
    } else {
      PrintError("Could not open '" + filename + "': " + s.message());
    }
    return kExitError;
  }
  if (verbose) {
    std::fprintf(stderr, "instar: vm setup %.0f us, first exit %.0f us, total %.0f us, %llu exits\n",
                 info->timings.setup_us, info->timings.first_exit_us, info->timings.total_us,
                 static_cast<unsigned long long>(info->timings.exits));
  }
  const std::string text =
      output == "json" ? InfoJson(filename, *info) : InfoHuman(filename, *info);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace instar::cli
