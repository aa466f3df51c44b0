// Descriptors to use instead of opening a path. Only a daemon worker child sets them: its
// client passed the image files over the socket (SCM_RIGHTS) and named them in the
// arguments, so OpenDevice takes those descriptors rather than the paths. Host-only;
// process-global, set before the command runs (the worker child is single-threaded).
#pragma once

#include <optional>
#include <string>

namespace instar::vmm {

void SetOpenOverride(const std::string& path, int fd);
// The descriptor registered for `path`, if any (still owned by the registry).
std::optional<int> FindOpenOverride(const std::string& path);

}  // namespace instar::vmm
