// The text qemu-img info prints, human and JSON, built from validated ImageInfo: one image, or
// a backing chain (--backing-chain) top first.
#pragma once

#include <string>
#include <vector>

#include "tools/cli/qdict_json.h"
#include "vmm/operations/info_request.h"

namespace instar::cli {

struct NamedImageInfo {
  std::string filename;  // as qemu names the image: the user's spelling, then combined names
  const vmm::ImageInfo* info;
};

// qemu's ImageInfo object for one image.
QValue ImageInfoValue(const NamedImageInfo& image);

std::string InfoHuman(const NamedImageInfo& image);
std::string InfoJson(const NamedImageInfo& image);
std::string ChainHuman(const std::vector<NamedImageInfo>& chain);
std::string ChainJson(const std::vector<NamedImageInfo>& chain);

}  // namespace instar::cli
