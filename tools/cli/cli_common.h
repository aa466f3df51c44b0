// What every instar subcommand shares: qemu-img's error line shapes, option-parsing errors,
// the VM limits an operator may set (flags or environment), and the KVM handle.
#pragma once

#include <optional>
#include <string>

#include "abi/image_format.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/launcher/operation_launcher.h"

namespace instar::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;

// "instar: MESSAGE" on stderr.
void PrintError(const std::string& message);
// qemu-img's two-line usage error; returns kExitError.
int UsageError(const std::string& message);
// Reports getopt's '?' or ':' result the way qemu-img does; returns kExitError.
int OptionError(int optopt_char, const char* argv_at_optind, bool missing_argument);

// -f NAME -> format; nullopt for names instar does not know.
std::optional<abi::ImageFormat> ParseFormatName(const std::string& name);

// Limits from INSTAR_DEADLINE_MS / INSTAR_MAX_EXITS; flags override them later.
vmm::VmLimits LimitsFromEnvironment();
// Parses --deadline=MS / --max-exits=N values; false on garbage.
bool ParseLimit(const char* text, uint64_t* out);

}  // namespace instar::cli
