// RunCommit: the host side of the commit operation. Discovers the backing chain (one info VM
// per layer, allowlist, depth cap, cycles refused), picks the base like qemu-img (the immediate
// backing file, or -b BASE found in the chain), opens the base read/write for the run only,
// takes QEMU's write locks on every image it writes and asks libvirt whether a running domain
// uses them, bounds how far the guest may extend the base, runs the commit guest in a fresh
// VM, re-validates the CommitResult it sends (the guest is hostile) and maps every CommitError
// to a message. Host-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/commit.h"
#include "abi/image_format.h"
#include "vmm/base/status.h"
#include "vmm/launcher/operation_launcher.h"
#include "vmm/launcher/sandbox.h"

namespace instar::vmm {

struct CommitRequest {
  std::string path;
  abi::ImageFormat format = abi::ImageFormat::kAuto;
  std::optional<std::string> base;  // -b BASE as given; implies drop
  bool drop = false;                // -d: leave the top as it is
  bool progress = false;            // -p: hooks.on_progress receives the guest's progress
  // Where backing files may live (empty: the top image's directory).
  std::vector<std::string> allowed_dirs;
  VmLimits limits;
  // Tests set hooks.fail_writes_after to interrupt the operation after N writes.
  ServerHooks hooks;
};

struct CommitOutcome {
  // Present whenever the guest got far enough to send it (also on refusals).
  std::optional<abi::CommitResult> result;
  // Set when the commit was refused or failed: the lines qemu-img prints without its program
  // name.
  std::vector<std::string> refusal;
  std::optional<abi::CommitError> error;
  LaunchTimings timings;
  std::string debug_text;
};

// File-open and VM failures of the top image are a Status (the CLI words them as qemu-img's
// "Could not open 'FILE': ..."); everything else is a refusal in CommitOutcome.
StatusOr<CommitOutcome> RunCommit(const Sandbox& sandbox, const CommitRequest& request);

// The line for an error the guest reported; exhaustive over abi::CommitError. `layer` names
// the layer the error is about, quoted as qemu quotes file names ("'base.qcow2'"); `written`
// says whether the guest had already written when it stopped.
std::string DescribeCommitError(abi::CommitError error, uint64_t detail, const std::string& layer,
                                bool written);

// Checks a CommitResult from the guest: magic, known flags, a layer index inside the chain,
// sizes that only grow.
Status ValidateCommitResult(const abi::CommitResult& result, uint32_t layer_count);

// How far the guest may write the base: its file size, plus every guest byte the top can hold
// (rounded up to the largest cluster) with L2 and refcount metadata for it, plus room for a
// grown L1 and refcount table.
uint64_t CommitBaseWriteLimit(uint64_t base_file_size, uint64_t top_virtual_size);

// How far the guest may write the top while emptying it: its file size plus room for copies of
// L2 tables shared with internal snapshots.
uint64_t CommitTopWriteLimit(uint64_t top_file_size, uint64_t top_virtual_size);

}  // namespace instar::vmm
