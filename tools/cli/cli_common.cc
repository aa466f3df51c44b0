#include "tools/cli/cli_common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "vmm/chain/path_policy.h"

namespace instar::cli {

void PrintError(const std::string& message) {
  std::fprintf(stderr, "instar: %s\n", message.c_str());
}

int UsageError(const std::string& message) {
  PrintError(message);
  std::fprintf(stderr, "Try 'instar --help' for more information\n");
  return kExitError;
}

int OptionError(int optopt_char, const char* argv_at_optind, bool missing_argument) {
  std::string option = optopt_char != 0 ? std::string("-") + static_cast<char>(optopt_char)
                                        : std::string(argv_at_optind ? argv_at_optind : "");
  if (missing_argument) return UsageError("missing argument for option '" + option + "'");
  return UsageError("unrecognized option '" + option + "'");
}

void ReportOpenError(const std::string& name, const Status& s) {
  // File-open errors repeat the name, as qemu-img's do.
  // "Failed to get ... lock" (an image QEMU holds) is not a file-open error.
  const bool in_use = s.message().rfind("Failed to get ", 0) == 0;
  const bool open_error = !in_use && (s.code() == StatusCode::kNotFound ||
                                      s.code() == StatusCode::kPermissionDenied ||
                                      s.code() == StatusCode::kIoError);
  if (s.code() == StatusCode::kInvalidArgument && s.message() == "Is a directory") {
    PrintError("Could not open '" + name + "': 'file' driver requires '" + name +
               "' to be a regular file");
  } else if (open_error && s.message().rfind("Could not open '", 0) != 0) {
    PrintError("Could not open '" + name + "': Could not open '" + name + "': " + s.message());
  } else {
    PrintError("Could not open '" + name + "': " + s.message());
  }
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

std::unique_ptr<vmm::Sandbox>& Preopened() {
  static std::unique_ptr<vmm::Sandbox> sandbox;
  return sandbox;
}

}  // namespace

void SetPreopenedSandbox(std::unique_ptr<vmm::Sandbox> sandbox) {
  Preopened() = std::move(sandbox);
}

std::unique_ptr<vmm::Sandbox> OpenSandboxOrReport(const std::string& choice) {
  if (Preopened() != nullptr) return std::move(Preopened());
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
  return std::move(sandbox).value();
}

GuestOptions GuestOptionsFromEnvironment() { return {false, LimitsFromEnvironment()}; }

OptionOutcome TakeGuestOption(int c, const char* arg, GuestOptions* options) {
  uint64_t v = 0;
  switch (c) {
    case kOptVerbose:
      options->verbose = true;
      return OptionOutcome::kTaken;
    case kOptDeadline:
      if (!ParseLimit(arg, &v)) {
        UsageError("invalid --deadline value");
        return OptionOutcome::kInvalid;
      }
      options->limits.deadline = std::chrono::milliseconds(v);
      return OptionOutcome::kTaken;
    case kOptMaxExits:
      if (!ParseLimit(arg, &v)) {
        UsageError("invalid --max-exits value");
        return OptionOutcome::kInvalid;
      }
      options->limits.max_exits = v;
      return OptionOutcome::kTaken;
    case kOptAllowDir:
      options->extra_allowed_dirs.push_back(arg);
      return OptionOutcome::kTaken;
    default:
      return OptionOutcome::kNotOurs;
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

void PrintLaunchTimings(const vmm::LaunchTimings& timings) {
  std::fprintf(stderr, "instar: vm setup %.0f us, first exit %.0f us, total %.0f us, %llu exits\n",
               timings.setup_us, timings.first_exit_us, timings.total_us,
               static_cast<unsigned long long>(timings.exits));
}

void ShowGuestText(const GuestOptions& options, vmm::ServerHooks* hooks) {
  if (!options.verbose) return;
  hooks->on_debug_text = [](std::string_view text) {
    std::fprintf(stderr, "guest: %.*s", static_cast<int>(text.size()), text.data());
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
