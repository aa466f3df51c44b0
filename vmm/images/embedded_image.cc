#include "vmm/images/embedded_image.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "abi/memory_map.h"

namespace instar::vmm {
namespace {

struct Checked {
  const uint8_t* bytes;
  size_t size;
  Sha256Digest sha256;
  bool operator==(const Checked&) const = default;
};

// An embedded image's bytes are read-only data of this executable: once they matched their
// hash, they match for the life of the process, so the same bytes are hashed once (a chain
// runs one guest per layer, a daemon worker checks its images before its order arrives).
bool ContentMatches(const EmbeddedImage& image) {
  static std::mutex mu;
  static std::vector<Checked> matched;
  const Checked key{image.bytes, image.size, image.sha256};
  {
    std::lock_guard<std::mutex> lock(mu);
    if (std::find(matched.begin(), matched.end(), key) != matched.end()) return true;
  }
  if (Sha256(image.bytes, image.size) != image.sha256) return false;
  std::lock_guard<std::mutex> lock(mu);
  matched.push_back(key);
  return true;
}

}  // namespace

StatusOr<VerifiedImage> VerifyImage(const EmbeddedImage& image, abi::GuestImageKind kind) {
  const std::string who = std::string("guest image '") + image.name + "': ";
  if (!ContentMatches(image)) {
    return Internal(who + "content hash differs from the one recorded at build time");
  }
  abi::GuestImageHeader h;
  if (image.size < sizeof h) return Internal(who + "shorter than its header");
  std::memcpy(&h, image.bytes, sizeof h);
  if (h.magic != abi::kGuestImageMagic) return Internal(who + "bad header magic");
  if (h.abi_version != abi::kAbiVersion) return Internal(who + "built for another ABI version");
  if (h.kind != static_cast<uint32_t>(kind)) return Internal(who + "wrong image kind");
  const abi::Region region =
      kind == abi::GuestImageKind::kRuntime ? abi::kRuntime : abi::kOperation;
  if (h.load_addr != region.base) return Internal(who + "wrong load address");
  if (h.file_end < h.load_addr || h.file_end - h.load_addr != image.size) {
    return Internal(who + "file extent does not match its size");
  }
  if (h.load_end < h.file_end || h.load_end > region.end()) {
    return Internal(who + "load extent outside its region");
  }
  if (h.entry < h.load_addr + sizeof h || h.entry >= h.file_end) {
    return Internal(who + "entry point outside its code");
  }
  return VerifiedImage{&image, h};
}

}  // namespace instar::vmm
