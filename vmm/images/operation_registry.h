// The operation binaries this host executable carries, by name. The launcher loads nothing
// else; the daemon picks from here per request. Host-only.
#pragma once

#include <span>
#include <string_view>

#include "vmm/images/embedded_image.h"

namespace instar::vmm {

struct RegisteredOperation {
  std::string_view name;
  const EmbeddedImage* image;
};

std::span<const RegisteredOperation> Operations();
const EmbeddedImage* FindOperation(std::string_view name);  // nullptr when unknown

}  // namespace instar::vmm
