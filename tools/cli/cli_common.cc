#include "tools/cli/cli_common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "vmm/base/std_stream.h"
#include "vmm/base/text_format.h"
#include "vmm/chain/path_policy.h"
#include "vmm/launcher/prebuilt_sandbox.h"

namespace instar::cli {

void PrintError(const std::string& message) {
  Emit(stderr, Format("instar: %s\n", message.c_str()));
}

int UsageError(const std::string& message) {
  PrintError(message);
  Emit(stderr, "Try 'instar --help' for more information\n");
  return kExitError;
}

std::string OpenErrorText(const std::string& name, const Status& s) {
  // File-open errors repeat the name, as qemu-img's do.
  // "Failed to get ... lock" (an image QEMU holds) is not a file-open error.
  const bool in_use = s.message().rfind("Failed to get ", 0) == 0;
  const bool open_error = !in_use && (s.code() == StatusCode::kNotFound ||
                                      s.code() == StatusCode::kPermissionDenied ||
                                      s.code() == StatusCode::kIoError);
  if (s.code() == StatusCode::kInvalidArgument && s.message() == "Is a directory") {
    return "'file' driver requires '" + name + "' to be a regular file";
  }
  if (open_error && s.message().rfind("Could not open '", 0) != 0) {
    return "Could not open '" + name + "': " + s.message();
  }
  return s.message();
}

void PrintTimings(const vmm::LaunchTimings& timings, std::optional<uint64_t> passes) {
  if (timings.exits == 0) return;  // refused before any guest ran: nothing was timed
  Emit(stderr, Format("instar: vm setup %.0f us, first exit %.0f us, total %.0f us, %llu exits",
               timings.setup_us, timings.first_exit_us, timings.total_us,
               static_cast<unsigned long long>(timings.exits)));
  Emit(stderr, passes ? Format(", %llu passes\n", static_cast<unsigned long long>(*passes)) : "\n");
}

void PrintRawProbeWarning(const std::string& filename) {
  Emit(stderr, Format("WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
               "         Automatically detecting the format is dangerous for raw images, "
               "write operations on block 0 will be restricted.\n"
               "         Specify the 'raw' format explicitly to remove the restrictions.\n",
               filename.c_str()));
}

void PrintRefusal(const std::string& name, const std::vector<std::string>& lines,
                  bool while_opening) {
  for (size_t i = 0; i < lines.size(); ++i) {
    PrintError((i == 0 && while_opening ? "Could not open '" + name + "': " : "") + lines[i]);
  }
}

void ReportOpenError(const std::string& name, const Status& s) {
  PrintError("Could not open '" + name + "': " + OpenErrorText(name, s));
}

std::optional<abi::ImageFormat> ParseFormatName(const std::string& name) {
  if (name == "raw") return abi::ImageFormat::kRaw;
  if (name == "qcow2") return abi::ImageFormat::kQcow2;
  if (name == "vmdk") return abi::ImageFormat::kVmdk;
  return std::nullopt;
}

bool ParseLimit(const char* text, uint64_t* out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v == 0) return false;
  *out = v;
  return true;
}

namespace {

// Owned until the process exits: a daemon worker reports its result first, then tears down.
std::unique_ptr<vmm::Sandbox>& Preopened() {
  static std::unique_ptr<vmm::Sandbox> sandbox;
  return sandbox;
}

// What a command gets for the preopened sandbox: a view, so dropping it destroys nothing.
class PreopenedView : public vmm::Sandbox {
 public:
  explicit PreopenedView(const vmm::Sandbox& sandbox) : sandbox_(sandbox) {}
  const char* name() const override { return sandbox_.name(); }
  const vmm::EmbeddedImage& runtime() const override { return sandbox_.runtime(); }
  StatusOr<std::unique_ptr<vmm::Machine>> NewMachine() const override {
    return sandbox_.NewMachine();
  }
  void ExpectMachines(size_t count) const override { sandbox_.ExpectMachines(count); }

 private:
  const vmm::Sandbox& sandbox_;
};

}  // namespace

void SetPreopenedSandbox(std::unique_ptr<vmm::Sandbox> sandbox) {
  Preopened() = std::move(sandbox);
}

std::unique_ptr<vmm::Sandbox> OpenSandboxOrReport(const std::string& choice) {
  if (Preopened() != nullptr) return std::make_unique<PreopenedView>(*Preopened());
  std::string name = choice;
  if (name.empty()) {
    const char* env = std::getenv("INSTAR_SANDBOX");
    name = env != nullptr && *env != '\0' ? env : "auto";
  }
  const auto parsed = vmm::ParseSandboxChoice(name);
  if (!parsed) {
    PrintError("--sandbox must be kvm, process or auto, not '" + name + "'");
    return nullptr;
  }
  std::string notice;
  auto sandbox = vmm::OpenSandbox(*parsed, &notice);
  if (!notice.empty()) PrintError(notice);
  if (!sandbox.ok()) {
    PrintError(sandbox.status().message());
    return nullptr;
  }
  // The first machine is built while the command opens its files; commands that run several
  // guests (chain discovery) say so and get each next machine built during the current run.
  return std::make_unique<vmm::PrebuiltSandbox>(std::move(sandbox).value(), /*ready=*/1,
                                                /*expected=*/1);
}

GuestOptions GuestOptionsFromEnvironment() { return {false, LimitsFromEnvironment()}; }

namespace {

enum SharedOptionId { kOptVerbose = 1000, kOptDeadline, kOptMaxExits, kOptAllowDir, kOptObject,
                      kOptImageOpts };

// qemu-img's line for getopt's '?' or ':' result; returns kExitError.
int OptionError(int optopt_char, const char* argv_at_optind, bool missing_argument) {
  std::string option = optopt_char != 0 ? std::string("-") + static_cast<char>(optopt_char)
                                        : std::string(argv_at_optind ? argv_at_optind : "");
  if (missing_argument) return UsageError("missing argument for option '" + option + "'");
  return UsageError("unrecognized option '" + option + "'");
}

// A shared option: nullopt once taken into *options, else the exit code.
std::optional<int> TakeSharedOption(int c, const char* arg, GuestOptions* options) {
  uint64_t v = 0;
  switch (c) {
    case kOptVerbose:
      options->verbose = true;
      return std::nullopt;
    case kOptDeadline:
      if (!ParseLimit(arg, &v)) return UsageError("invalid --deadline value");
      options->limits.deadline = std::chrono::milliseconds(v);
      return std::nullopt;
    case kOptMaxExits:
      if (!ParseLimit(arg, &v)) return UsageError("invalid --max-exits value");
      options->limits.max_exits = v;
      return std::nullopt;
    case kOptAllowDir:
      options->extra_allowed_dirs.push_back(arg);
      return std::nullopt;
    default:
      // --object and --image-opts name things instar has no use for.
      PrintError("--object and --image-opts are not supported by instar");
      return kExitError;
  }
}

}  // namespace

std::optional<int> ParseOptions(int argc, char** argv, const char* short_options,
                                std::initializer_list<option> long_options, GuestOptions* guest,
                                const OptionHandler& take) {
  std::vector<option> table(long_options);
  table.insert(table.end(), {{"verbose", no_argument, nullptr, kOptVerbose},
                             {"deadline", required_argument, nullptr, kOptDeadline},
                             {"max-exits", required_argument, nullptr, kOptMaxExits},
                             {"allow-dir", required_argument, nullptr, kOptAllowDir},
                             {"object", required_argument, nullptr, kOptObject},
                             {"image-opts", no_argument, nullptr, kOptImageOpts},
                             {nullptr, 0, nullptr, 0}});
  // A leading ':' makes getopt tell a missing argument from an unknown option, quietly.
  const std::string shorts = std::string(":") + short_options;
  opterr = 0;
  optind = 1;
  for (;;) {
    const int c = getopt_long(argc, argv, shorts.c_str(), table.data(), nullptr);
    if (c == -1) return std::nullopt;
    if (c == ':') return OptionError(optopt, argv[optind - 1], true);
    if (c == '?') return OptionError(optopt, argv[optind - 1], false);
    const std::optional<int> stop = c >= kOptVerbose ? TakeSharedOption(c, optarg, guest)
                                                     : take(c, optarg);
    if (stop) return stop;
  }
}

std::optional<std::vector<std::string>> AllowedDirsFor(const std::string& filename,
                                                       const GuestOptions& options) {
  auto configured = vmm::LoadConfiguredAllowDirs();
  if (!configured.ok()) {
    PrintError(configured.status().message());
    return std::nullopt;
  }
  std::vector<std::string> allowed = {vmm::DirectoryOf(filename)};
  allowed.insert(allowed.end(), options.extra_allowed_dirs.begin(),
                 options.extra_allowed_dirs.end());
  allowed.insert(allowed.end(), configured->begin(), configured->end());
  return allowed;
}

bool ResolveFormatName(const std::string& filename, const std::string& name,
                       abi::ImageFormat* format) {
  if (name.empty()) return true;
  const auto parsed = ParseFormatName(name);
  if (!parsed) {
    PrintError("Could not open '" + filename + "': Unknown driver '" + name + "'");
    return false;
  }
  *format = *parsed;
  return true;
}

std::optional<bool> CacheModeFlushes(const std::string& mode) {
  if (mode == "unsafe") return false;
  if (mode == "none" || mode == "off" || mode == "directsync" || mode == "writeback" ||
      mode == "writethrough") {
    return true;
  }
  return std::nullopt;
}

void ShowGuestText(const GuestOptions& options, vmm::ServerHooks* hooks) {
  if (!options.verbose) return;
  hooks->on_debug_text = [](std::string_view text) {
    Emit(stderr, Format("guest: %.*s", static_cast<int>(text.size()), text.data()));
  };
}

vmm::VmLimits LimitsFromEnvironment() {
  vmm::VmLimits limits;
  uint64_t v = 0;
  if (ParseLimit(std::getenv("INSTAR_DEADLINE_MS"), &v)) {
    limits.deadline = std::chrono::milliseconds(v);
  }
  if (ParseLimit(std::getenv("INSTAR_MAX_EXITS"), &v)) limits.max_exits = v;
  return limits;
}

}  // namespace instar::cli
