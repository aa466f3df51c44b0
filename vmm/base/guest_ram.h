// GuestRam: a non-owning, bounds-checked view of a guest's RAM (either backend's: the KVM
// memslot or the process sandbox's memfd mapping). Every access derived from a
// guest-supplied address goes through UserRange(), which admits only ranges that lie entirely
// inside one user region of abi/memory_map.h. Host-only; no allocation.
#pragma once

#include <cstdint>
#include <cstring>

namespace instar::vmm {

// Tests build one over a plain buffer.
struct GuestRam {
  uint8_t* base = nullptr;
  uint64_t size = 0;

  // Host pointer for [gpa, gpa+len) when it lies inside one user region, else nullptr.
  uint8_t* UserRange(uint64_t gpa, uint64_t len) const;
  // Host pointer for [gpa, gpa+len) anywhere in RAM (host-built structures only).
  uint8_t* Range(uint64_t gpa, uint64_t len) const;

  template <class T>
  T Read(uint64_t gpa) const {
    T v;
    std::memcpy(&v, Range(gpa, sizeof(T)), sizeof(T));
    return v;
  }
  template <class T>
  void Write(uint64_t gpa, const T& v) const {
    std::memcpy(Range(gpa, sizeof(T)), &v, sizeof(T));
  }
};

}  // namespace instar::vmm
