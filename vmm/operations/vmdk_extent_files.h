// The files of a VMDK descriptor's extents on the host: opening the ones a descriptor names
// (qemu's name resolution, then the allowlist), and creating new ones for a growing
// twoGbMaxExtentSparse image. The host knows nothing of their contents: the guest writes every
// byte. Host-only.
#pragma once

#include <string>
#include <vector>

#include "vmm/base/status.h"
#include "vmm/chain/path_policy.h"
#include "vmm/transport/device.h"

namespace instar::vmm {

// Opens the extent `filename` of the descriptor at `descriptor_path`; `*path` gets the name
// qemu would use. Refusals are kImageRejected, worded "Could not open 'PATH': ...".
StatusOr<Device> OpenVmdkExtent(const Allowlist& allowlist, const std::string& descriptor_path,
                                const std::string& filename, bool writable, std::string* path);

// How large a new extent file may become: a 2 GiB sparse extent's metadata as qemu-img create
// lays it out is 320 KiB.
inline constexpr uint64_t kNewExtentFileLimit = 1u << 20;

// New, empty extent files next to a descriptor. Created with O_CREAT|O_EXCL (an existing file
// is never taken over); removed again when the object goes away unless Keep() was called and
// while the descriptor still has the bytes it had when the first file was created (once the
// descriptor names them, removing them would break the image).
class NewExtentFiles {
 public:
  explicit NewExtentFiles(std::string descriptor_path);
  ~NewExtentFiles();
  NewExtentFiles(const NewExtentFiles&) = delete;
  NewExtentFiles& operator=(const NewExtentFiles&) = delete;

  // Creates the extent file `name` in the descriptor's directory, writable up to
  // kNewExtentFileLimit.
  StatusOr<Device> Create(const std::string& name);
  void Keep() { keep_ = true; }

 private:
  std::string descriptor_path_;
  std::string descriptor_bytes_;
  bool snapshot_taken_ = false;
  bool keep_ = false;
  std::vector<std::string> created_;
};

// The parts of a descriptor's file name qemu-img create builds its extent names from: up to the
// last dot of the base name, and from it.
struct ExtentNameParts {
  std::string stem;
  std::string suffix;
};
ExtentNameParts SplitDescriptorName(const std::string& descriptor_path);

}  // namespace instar::vmm
