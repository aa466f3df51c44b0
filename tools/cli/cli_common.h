// What every instar subcommand shares: qemu-img's error line shapes, option-parsing errors,
// the VM limits an operator may set (flags or environment), and the sandbox choice.
#pragma once

#include <getopt.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "abi/image_format.h"
#include "vmm/base/status.h"
#include "vmm/launcher/sandbox.h"
#include "vmm/launcher/sandbox_factory.h"

namespace instar::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;

// "instar: MESSAGE" on stderr.
void PrintError(const std::string& message);
// qemu-img's "Could not open 'NAME': ..." line for a failure to open, lock or read `name`.
void ReportOpenError(const std::string& name, const Status& status);
// A refusal of a writing operation: its lines as "instar: ..." on stderr, the first prefixed
// with "Could not open 'NAME': " when qemu-img says it while opening the image.
void PrintRefusal(const std::string& name, const std::vector<std::string>& lines,
                  bool while_opening);
// What that line says after "Could not open 'NAME': ".
std::string OpenErrorText(const std::string& name, const Status& status);
// qemu-img's two-line usage error; returns kExitError.
int UsageError(const std::string& message);
// -f NAME -> format; nullopt for names instar does not know.
std::optional<abi::ImageFormat> ParseFormatName(const std::string& name);

// The sandbox `instar --sandbox KIND` or INSTAR_SANDBOX names (kvm, process, auto; default
// auto), building its first machine ahead (vmm/launcher/prebuilt_sandbox.h); prints the
// fallback notice or the error itself. Null on failure. A sandbox handed to
// SetPreopenedSandbox (a daemon worker opens it before dropping privileges) is used instead;
// it lives until the process exits (its machines' teardown comes after the result).
std::unique_ptr<vmm::Sandbox> OpenSandboxOrReport(const std::string& choice = "");
void SetPreopenedSandbox(std::unique_ptr<vmm::Sandbox> sandbox);

// The options of instar's own every command takes: --verbose (guest debug text and timings
// on stderr), --deadline MS and --max-exits N (bounds on the guest), --allow-dir DIR (where
// backing and extent files may also live).
struct GuestOptions {
  bool verbose = false;
  vmm::VmLimits limits;  // from the environment, then the flags
  std::vector<std::string> extra_allowed_dirs;  // --allow-dir, in order
};
GuestOptions GuestOptionsFromEnvironment();

// A command numbers its long-only options from here (below the shared ones' values).
inline constexpr int kFirstCommandOption = 256;

// What a command does with one of its options: nullopt to go on, or the exit code to stop
// with (after printing what it has to).
using OptionHandler = std::function<std::optional<int>(int option, const char* argument)>;

// Parses a command's options as qemu-img does (getopt_long; qemu-img's lines for an unknown
// option or a missing argument). `short_options` in getopt syntax; `long_options` the
// command's own (values: their short option, or kFirstCommandOption and up). The shared ones
// above are taken into `*guest`, and --object / --image-opts are refused; `take` gets every
// other option. Returns nullopt when all were taken (optind then indexes the first operand),
// else the exit code to stop with.
std::optional<int> ParseOptions(int argc, char** argv, const char* short_options,
                                std::initializer_list<option> long_options, GuestOptions* guest,
                                const OptionHandler& take);

// Where the backing (and extent) files of `filename` may live: its own directory, the
// --allow-dir ones, then the operator's ('allow DIR' lines in $INSTAR_CONFIG or
// /etc/instar/config). nullopt, with the error printed, when the configuration is unreadable.
std::optional<std::vector<std::string>> AllowedDirsFor(const std::string& filename,
                                                       const GuestOptions& options);

// -f NAME for `filename`: false (after qemu-img's "Unknown driver" line) for a name instar
// does not know.
bool ResolveFormatName(const std::string& filename, const std::string& name,
                       abi::ImageFormat* format);

// With --verbose: the run's timings on stderr ("instar: vm setup ... us, ..."), with the
// check's passes over the refcount space when given; nothing when no guest ran.
void PrintTimings(const vmm::LaunchTimings& timings,
                  std::optional<uint64_t> passes = std::nullopt);

// qemu-img's warning after it probed a writable image as raw.
void PrintRawProbeWarning(const std::string& filename);

// qemu's cache modes (bdrv_parse_cache_mode): whether the mode keeps qemu's flushes (all but
// `unsafe`; instar has no other page-cache distinctions), nullopt for an unknown mode.
std::optional<bool> CacheModeFlushes(const std::string& mode);

// With --verbose: shows the guest's debug text on stderr as it arrives.
void ShowGuestText(const GuestOptions& options, vmm::ServerHooks* hooks);

// Limits from INSTAR_DEADLINE_MS / INSTAR_MAX_EXITS; flags override them later.
vmm::VmLimits LimitsFromEnvironment();
// Parses --deadline=MS / --max-exits=N values; false on garbage.
bool ParseLimit(const char* text, uint64_t* out);

}  // namespace instar::cli
