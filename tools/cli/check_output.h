// qemu-img check's report: the human text (with the repair banner) and the JSON object, in
// qemu's key order and string escaping. Host-only.
#pragma once

#include <string>

#include "abi/check.h"

namespace instar::cli {

std::string CheckHuman(const abi::CheckResult& result);
// The "The following inconsistencies were found and repaired" banner (human output only).
std::string CheckRepairBanner(const abi::CheckResult& result);
std::string CheckJson(const std::string& filename, const abi::CheckResult& result);

}  // namespace instar::cli
