// RunRebase: the host side of the rebase operation. Discovers the overlay's backing chain and
// the new backing file's chain the way qemu-img resolves them (shared chain discovery:
// allowlist, depth, cycles), opens the overlay read/write under QEMU's image locks and the
// libvirt guard, attaches both chains read-only at contiguous input slots (top first), runs the
// rebase guest, re-validates the RebaseResult (the guest is hostile) and maps every
// RebaseError to qemu-img's message. Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/image_format.h"
#include "abi/rebase.h"
#include "vmm/base/status.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/launcher/sandbox.h"

namespace instar::vmm {

struct RebaseRequest {
  std::string path;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  bool unsafe = false;                        // -u
  std::optional<std::string> backing;         // -b (may be empty: no backing file)
  std::optional<std::string> backing_format;  // -F
  bool force_share = false;                   // -U: backing files are opened without locks
  // Where backing files may live (empty: the overlay's directory).
  std::vector<std::string> allowed_dirs;
  VmLimits limits;
  // hooks.on_progress receives -p progress; tests set hooks.fail_writes_after.
  ServerHooks hooks;
};

// The lines qemu-img prints (without the program name), and whether it says them while
// opening the overlay ("Could not open 'FILE': " comes first then).
struct RebaseMessage {
  std::vector<std::string> lines;
  bool while_opening = false;
};

// The new backing file could not be opened: qemu-img prints "Could not open new backing file
// 'NAME': " and then what opening `path` (NAME resolved against the overlay) said.
struct NewBackingFailure {
  std::string path;
  Status status;
};

struct RebaseOutcome {
  std::optional<abi::RebaseResult> result;
  std::optional<RebaseMessage> refusal;
  std::optional<abi::RebaseError> error;
  std::optional<NewBackingFailure> new_backing_failure;
  LaunchTimings timings;
  std::string debug_text;
};

// Failures to open the overlay are a Status (the text after "Could not open 'FILE': "); the
// guest's and the chains' refusals are in RebaseOutcome.
StatusOr<RebaseOutcome> RunRebase(const Sandbox& sandbox, const RebaseRequest& request);

// True for the format names qemu-img 7.2 knows (its "Supported formats" list): anything else
// is "Invalid format name" for -F.
bool IsQemuFormatName(const std::string& name);

// The overlay's write limit: its file size plus room for what the rebase may add.
uint64_t RebaseWriteLimit(uint64_t overlay_file_size, uint64_t overlay_virtual_size,
                          bool unsafe);

// Checks a RebaseResult from the guest: magic, a known format, counters consistent.
Status ValidateRebaseResult(const abi::RebaseResult& result);

}  // namespace instar::vmm
