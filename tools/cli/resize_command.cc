#include "tools/cli/resize_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "tools/cli/cli_common.h"
#include "tools/cli/resize_size.h"
#include "vmm/base/std_stream.h"
#include "vmm/operations/resize_request.h"

namespace instar::cli {
namespace {

enum LongOnly {
  kOptPreallocation = kFirstCommandOption,
  kOptShrink,
};

void PrintHelp() {
  Emit(stdout, "usage: instar resize [-f FMT] [--preallocation=MODE] [-q] [--shrink] FILENAME "
      "[+ | -]SIZE\n"
      "\n"
      "Changes the virtual size of an image as qemu-img resize does, parsing and changing it\n"
      "inside a throw-away KVM VM.\n"
      "\n"
      "  -f, --format FMT       image format (raw, qcow2, vmdk); probed when absent\n"
      "  --preallocation MODE   off (default); raw: falloc, full\n"
      "  --shrink               allow the image to become smaller\n"
      "  --allow-dir DIR        also let backing files live in DIR (repeatable)\n"
      "  -q                     quiet\n"
      "  --verbose              show the guest's debug text and timings on stderr\n"
      "  --deadline MS          stop the guest after MS milliseconds (INSTAR_DEADLINE_MS)\n"
      "  --max-exits N          stop the guest after N exits (INSTAR_MAX_EXITS)\n");
}

bool ParsePreallocation(const std::string& name, abi::Preallocation* out) {
  if (name == "off") *out = abi::Preallocation::kOff;
  else if (name == "metadata") *out = abi::Preallocation::kMetadata;
  else if (name == "falloc") *out = abi::Preallocation::kFalloc;
  else if (name == "full") *out = abi::Preallocation::kFull;
  else return false;
  return true;
}

}  // namespace

int ResizeCommand(int argc, char** argv) {
  // qemu-img takes SIZE off the end before option parsing, so "-1G" is never an option.
  if (argc < 3) return UsageError("Not enough arguments");
  const std::string size_argument = argv[--argc];

  std::string format_name;
  bool quiet = false;
  vmm::ResizeRequest request;
  GuestOptions guest = GuestOptionsFromEnvironment();
  const std::optional<int> stop = ParseOptions(
      argc, argv, "f:hq",
      {{"help", no_argument, nullptr, 'h'},
       {"format", required_argument, nullptr, 'f'},
       {"preallocation", required_argument, nullptr, kOptPreallocation},
       {"shrink", no_argument, nullptr, kOptShrink}},
      &guest, [&](int c, const char* arg) -> std::optional<int> {
        switch (c) {
          case 'h': PrintHelp(); return kExitOk;
          case 'f': format_name = arg; break;
          case 'q': quiet = true; break;
          case kOptShrink: request.allow_shrink = true; break;
          case kOptPreallocation:
            if (!ParsePreallocation(arg, &request.preallocation)) {
              PrintError(std::string("Invalid preallocation mode '") + arg + "'");
              return kExitError;
            }
            break;
        }
        return std::nullopt;
      });
  if (stop) return *stop;
  if (optind != argc - 1) return UsageError("Expecting image file name and size");
  const std::string filename = argv[optind];

  const ParsedSize size = ParseResizeSize(size_argument);
  if (size.hex_with_suffix) {
    PrintError("warning: Using a multiplier suffix on hex numbers is deprecated: " + size.number);
  }
  switch (size.status) {
    case SizeParseStatus::kOk: break;
    case SizeParseStatus::kInvalid:
      PrintError("Parameter 'size' expects a non-negative number below 2^64");
      Emit(stderr, "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                   "and exabytes, respectively.\n");
      return kExitError;
    case SizeParseStatus::kOutOfRange:
      PrintError("Value '" + size.number + "' is out of range for parameter 'size'");
      return kExitError;
  }
  const auto allowed_dirs = AllowedDirsFor(filename, guest);
  if (!allowed_dirs) return kExitError;
  request.allowed_dirs = *allowed_dirs;
  request.path = filename;
  request.size = size.bytes;
  request.size_mode = size.sign == SizeSign::kPlus    ? abi::ResizeSizeMode::kGrowBy
                      : size.sign == SizeSign::kMinus ? abi::ResizeSizeMode::kShrinkBy
                                                      : abi::ResizeSizeMode::kAbsolute;
  request.limits = guest.limits;
  if (!ResolveFormatName(filename, format_name, &request.format)) return kExitError;
  ShowGuestText(guest, &request.hooks);

  const std::unique_ptr<vmm::Sandbox> sandbox = OpenSandboxOrReport();
  if (sandbox == nullptr) return kExitError;
  auto outcome = vmm::RunResize(*sandbox, request);
  if (!outcome.ok()) {
    ReportOpenError(filename, outcome.status());
    return kExitError;
  }
  if (guest.verbose) PrintTimings(outcome->timings);
  Emit(stderr, outcome->repair_messages);
  if (request.format == abi::ImageFormat::kAuto && outcome->result &&
      outcome->result->format == static_cast<uint32_t>(abi::ImageFormat::kRaw)) {
    PrintRawProbeWarning(filename);
  }
  if (outcome->refusal) {
    PrintRefusal(filename, outcome->refusal->lines, outcome->refusal->while_opening);
    return kExitError;
  }
  if (!quiet) Emit(stdout, "Image resized.\n");
  return kExitOk;
}

}  // namespace instar::cli
