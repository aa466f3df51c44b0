#include "vmm/transport/open_overrides.h"

#include <map>

namespace instar::vmm {
namespace {

std::map<std::string, int>& Overrides() {
  static std::map<std::string, int> overrides;
  return overrides;
}

}  // namespace

void SetOpenOverride(const std::string& path, int fd) { Overrides()[path] = fd; }

std::optional<int> FindOpenOverride(const std::string& path) {
  const auto it = Overrides().find(path);
  if (it == Overrides().end()) return std::nullopt;
  return it->second;
}

}  // namespace instar::vmm
