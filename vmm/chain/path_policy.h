// Which files an image may make the host open: the names an image reports (backing files,
// vmdk extents) are hostile. Relative names resolve like qemu's (against the directory of the
// image as it was named); pseudo-paths (json:, protocol prefixes) are refused; what is opened
// must canonicalise (realpath) into an allowed directory. Host-only.
#pragma once

#include <string>
#include <vector>

#include "vmm/base/status.h"

namespace instar::vmm {

// qemu's combination of an image's name with a name it reports: absolute names stay, relative
// ones are taken from the image's directory (as a string: "a/b.qcow2" + "c" -> "a/c").
std::string CombinePath(const std::string& image, const std::string& name);

// True for names qemu would hand to a protocol driver instead of a file: "json:{...}",
// "nbd:...", "http://...": anything with a ':' before its first '/'.
bool IsPseudoPath(const std::string& name);

// The directory part of `path` ("." when it has none).
std::string DirectoryOf(const std::string& path);

class Allowlist {
 public:
  // `dirs` are canonicalised now; a directory that does not exist admits nothing.
  explicit Allowlist(const std::vector<std::string>& dirs);

  // The canonical path of `path` when it exists and lies in an allowed directory. A missing
  // file is kNotFound with errno's text (for qemu's message); anything else is refused.
  StatusOr<std::string> Admit(const std::string& path) const;

  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  std::vector<std::string> dirs_;
};

// Allowed directories from the operator's configuration: $INSTAR_CONFIG, else
// /etc/instar/config, one `allow DIR` per line ('#' starts a comment), plus those given to
// SetOperatorAllowDirs. A missing file gives none; a malformed line is an error.
StatusOr<std::vector<std::string>> LoadConfiguredAllowDirs();

// Directories the process's operator allowed on its command line (instard --allow DIR). Set
// once at start-up, before any worker exists.
void SetOperatorAllowDirs(std::vector<std::string> dirs);

}  // namespace instar::vmm
