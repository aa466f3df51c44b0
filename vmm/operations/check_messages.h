// The text qemu-img's check prints for each finding the check guest reports, and for each
// CheckError, plus the validation of findings (the guest is hostile: kinds, flags and strings
// are checked before anything is formatted). Exhaustive over the ABI enums. Host-only.
#pragma once

#include <cstdint>
#include <string>

#include "abi/check.h"
#include "vmm/base/status.h"

namespace instar::vmm {

Status ValidateFinding(const abi::CheckFinding& finding);
Status ValidateSnapshotFinding(const abi::CheckSnapshotFinding& finding);

// One or more lines (each ending in '\n'), as qemu prints them on stderr.
std::string DescribeFinding(const abi::CheckFinding& finding);
std::string DescribeSnapshotFinding(const abi::CheckSnapshotFinding& finding);

// The text after "Could not open 'FILE': " for errors that stop the check before it starts.
std::string DescribeCheckError(abi::CheckError error, uint64_t detail);

// "Check failed: ..." for a check that returned an errno.
std::string DescribeCheckFailure(abi::CheckFailure failure);

}  // namespace instar::vmm
