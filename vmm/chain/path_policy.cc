#include "vmm/chain/path_policy.h"

#include <climits>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace instar::vmm {

std::string CombinePath(const std::string& image, const std::string& name) {
  if (name.empty() || name[0] == '/') return name;
  const size_t slash = image.rfind('/');
  if (slash == std::string::npos) return name;
  return image.substr(0, slash + 1) + name;
}

bool IsPseudoPath(const std::string& name) {
  const size_t colon = name.find(':');
  if (colon == std::string::npos) return false;
  const size_t slash = name.find('/');
  return slash == std::string::npos || colon < slash;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Allowlist::Allowlist(const std::vector<std::string>& dirs) {
  for (const std::string& d : dirs) {
    char buf[PATH_MAX];
    if (::realpath(d.c_str(), buf) != nullptr) dirs_.emplace_back(buf);
  }
}

StatusOr<std::string> Allowlist::Admit(const std::string& path) const {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    const StatusCode code = errno == ENOENT ? StatusCode::kNotFound
                            : errno == EACCES ? StatusCode::kPermissionDenied
                                              : StatusCode::kIoError;
    return Status(code, std::strerror(errno));
  }
  const std::string canonical = buf;
  for (const std::string& dir : dirs_) {
    const bool inside = canonical.compare(0, dir.size(), dir) == 0 &&
                        (canonical.size() == dir.size() || canonical[dir.size()] == '/');
    if (dir == "/" || inside) {
      return canonical;
    }
  }
  return Status(StatusCode::kPermissionDenied,
                "'" + canonical + "' is outside the allowed directories (see --allow-dir)");
}

namespace {

std::vector<std::string>& OperatorAllowDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

}  // namespace

void SetOperatorAllowDirs(std::vector<std::string> dirs) { OperatorAllowDirs() = std::move(dirs); }

StatusOr<std::vector<std::string>> LoadConfiguredAllowDirs() {
  const char* env = std::getenv("INSTAR_CONFIG");
  const std::string path = env != nullptr && *env != '\0' ? env : "/etc/instar/config";
  std::ifstream in(path);
  std::vector<std::string> dirs = OperatorAllowDirs();
  if (!in) return dirs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string keyword, dir, extra;
    if (!(words >> keyword)) continue;
    if (keyword != "allow" || !(words >> dir) || (words >> extra)) {
      return InvalidArgument(path + ":" + std::to_string(number) +
                             ": expected 'allow DIR'");
    }
    dirs.push_back(dir);
  }
  return dirs;
}

}  // namespace instar::vmm
