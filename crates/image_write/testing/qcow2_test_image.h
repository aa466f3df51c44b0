// In-memory qcow2 images for unit tests of the planners and writers: a builder for small v3
// images, a reference-count audit that counts references the way `qemu-img check` does
// (active L1 only), and a recording sink whose steps can be replayed one at a time (a crash
// after each). Host-only test support.
#pragma once

#include <cstdint>
#include <vector>

#include "crates/image_write/step.h"

namespace instar::image_write::testing {

using Bytes = std::vector<uint8_t>;

void Put64(Bytes& b, uint64_t off, uint64_t v);
void Put32(Bytes& b, uint64_t off, uint32_t v);
uint64_t Get64(const Bytes& b, uint64_t off);

struct ImageSpec {
  uint32_t cluster_bits = 16;
  uint32_t refcount_order = 4;
  uint64_t size = 64 << 20;
  std::vector<uint64_t> data_at;  // guest offsets to allocate one data cluster for
};

// A v3 image: header, refcount table (1 cluster), refcount block 0, L1, then per data cluster
// its L2 table (when new) and the cluster itself, every refcount 1.
Bytes BuildImage(const ImageSpec& spec);

struct Counts {
  uint64_t corruptions = 0;  // clusters referenced more often than their refcount says
  uint64_t leaks = 0;        // clusters whose refcount exceeds their references
};

// References vs refcounts, as qemu-img check counts them (active L1 only: no snapshots).
Counts Check(const Bytes& img);

// ImageReader callback over a Bytes (context: the Bytes).
bool ReadBytes(void* ctx, uint64_t off, uint64_t len, uint8_t* out);

struct Recorded {
  Step step;
  Bytes bytes;
};

// StepSink callback appending to a std::vector<Recorded> (context: the vector).
bool Record(void* ctx, const Step& s);

// Applies one recorded step to `img`.
void Apply(Bytes& img, const Recorded& r);

}  // namespace instar::image_write::testing
