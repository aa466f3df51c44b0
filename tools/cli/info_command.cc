#include "tools/cli/info_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/info_output.h"
#include "vmm/base/std_stream.h"
#include "vmm/chain/chain_discovery.h"
#include "vmm/operations/info_request.h"

namespace instar::cli {
namespace {

enum LongOnly {
  kOptOutput = kFirstCommandOption,
  kOptBackingChain,
};

void PrintHelp() {
  Emit(stdout, "usage: instar info [-f FMT] [--output=human|json] [--backing-chain] [-U]\n"
      "                   [--allow-dir DIR]... FILENAME\n"
      "\n"
      "Prints what qemu-img info prints, parsing the image inside a throw-away KVM VM.\n"
      "\n"
      "  -f, --format FMT     image format (raw, qcow2, vmdk); probed when absent\n"
      "  --output FMT         human (default) or json\n"
      "  --backing-chain      show every image of the backing chain, top first\n"
      "  -U, --force-share    open even if QEMU holds the image (takes no image locks)\n"
      "  --allow-dir DIR      also let backing and extent files live in DIR (repeatable;\n"
      "                       the image's own directory is always allowed; more from\n"
      "                       'allow DIR' lines in $INSTAR_CONFIG or /etc/instar/config)\n"
      "  --verbose            show the guest's debug text and timings on stderr\n"
      "  --deadline MS        stop the guest after MS milliseconds (INSTAR_DEADLINE_MS)\n"
      "  --max-exits N        stop the guest after N exits (INSTAR_MAX_EXITS)\n");
}

// qemu warns (and goes on) when a program without bitmap support left a bitmaps extension
// behind; it does so while opening each image.
void PrintWarnings(const vmm::ImageInfo& info) {
  if (info.result.flags & abi::kInfoStaleBitmaps) {
    Emit(stderr, "instar: warning: a program lacking bitmap support modified this file, so all "
                 "bitmaps are now considered inconsistent\n"
                 "Some clusters may be leaked, run 'qemu-img check -r' on the image file to "
                 "fix.");  // qemu ends this one without a newline
  }
}

}  // namespace

int InfoCommand(int argc, char** argv) {
  std::string format_name, output = "human";
  bool backing_chain = false, force_share = false;
  GuestOptions guest = GuestOptionsFromEnvironment();
  const std::optional<int> stop = ParseOptions(
      argc, argv, "f:hU",
      {{"help", no_argument, nullptr, 'h'},
       {"format", required_argument, nullptr, 'f'},
       {"output", required_argument, nullptr, kOptOutput},
       {"backing-chain", no_argument, nullptr, kOptBackingChain},
       {"force-share", no_argument, nullptr, 'U'}},
      &guest, [&](int c, const char* arg) -> std::optional<int> {
        switch (c) {
          case 'h': PrintHelp(); return kExitOk;
          case 'f': format_name = arg; break;
          case 'U': force_share = true; break;
          case kOptOutput: output = arg; break;
          case kOptBackingChain: backing_chain = true; break;
        }
        return std::nullopt;
      });
  if (stop) return *stop;
  if (optind != argc - 1) return UsageError("Expecting one image file name");
  const std::string filename = argv[optind];
  if (output != "human" && output != "json") {
    PrintError("--output must be used with human or json as argument.");
    return kExitError;
  }

  const auto allowed_dirs = AllowedDirsFor(filename, guest);
  if (!allowed_dirs) return kExitError;
  const std::vector<std::string>& allowed = *allowed_dirs;

  vmm::InfoRequest request;
  request.path = filename;
  request.force_share = force_share;
  request.limits = guest.limits;
  request.allowed_dirs = allowed;
  if (!ResolveFormatName(filename, format_name, &request.format)) return kExitError;
  ShowGuestText(guest, &request.hooks);

  const std::unique_ptr<vmm::Sandbox> sandbox = OpenSandboxOrReport();
  if (sandbox == nullptr) return kExitError;
  if (backing_chain) {
    vmm::ChainPolicy policy;
    policy.allowed_dirs = allowed;
    std::string failed;
    auto chain = vmm::DiscoverChain(*sandbox, request, policy, &failed);
    if (!chain.ok()) {
      ReportOpenError(failed, chain.status());
      return kExitError;
    }
    std::vector<NamedImageInfo> named;
    for (const vmm::ChainLayer& layer : *chain) {
      PrintWarnings(layer.info);
      if (guest.verbose) PrintTimings(layer.info.timings);
      named.push_back({layer.filename, &layer.info});
    }
    const std::string text = output == "json" ? ChainJson(named) : ChainHuman(named);
    Emit(stdout, text);
    return kExitOk;
  }
  auto info = vmm::RunInfo(*sandbox, request);
  if (!info.ok()) {
    ReportOpenError(filename, info.status());
    return kExitError;
  }
  PrintWarnings(*info);
  if (guest.verbose) PrintTimings(info->timings);
  const NamedImageInfo image{filename, &*info};
  const std::string text = output == "json" ? InfoJson(image) : InfoHuman(image);
  Emit(stdout, text);
  return kExitOk;
}

}  // namespace instar::cli
