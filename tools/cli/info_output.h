// The text qemu-img info prints, human and JSON, built from a validated ImageInfo.
#pragma once

#include <string>

#include "vmm/operations/info_request.h"

namespace instar::cli {

// `filename` is the name as the user gave it (qemu prints it unchanged).
std::string InfoHuman(const std::string& filename, const vmm::ImageInfo& info);
std::string InfoJson(const std::string& filename, const vmm::ImageInfo& info);

}  // namespace instar::cli
