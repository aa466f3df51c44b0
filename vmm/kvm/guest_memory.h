// GuestMemory: the KVM guest's RAM as one anonymous mapping (viewed through GuestRam).
// Host-only.
#pragma once

#include <cstdint>
#include <cstring>

#include "vmm/base/guest_ram.h"
#include "vmm/base/mapping.h"
#include "vmm/base/status.h"

namespace instar::vmm {

class GuestMemory {
 public:
  static StatusOr<GuestMemory> Allocate(uint64_t size);
  GuestRam ram() const { return {mapping_.data(), mapping_.size()}; }

 private:
  explicit GuestMemory(Mapping m) : mapping_(std::move(m)) {}
  Mapping mapping_;
};

}  // namespace instar::vmm
