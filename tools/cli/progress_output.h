// ProgressOutput: qemu-img's -p progress line on stdout, "    (NN.NN/100%)\r", redrawn when
// the percentage moves by more than one point (qemu_progress_init(progress, 1.f)) and at 100%,
// ended with a newline. Disabled, it prints nothing. Host-only.
#pragma once

#include <cstdint>

namespace instar::cli {

class ProgressOutput {
 public:
  explicit ProgressOutput(bool enabled) : enabled_(enabled) {}

  // The first line, 0%.
  void Start();
  // `done` of `total` units (bytes); ignored when total is 0 or done exceeds it.
  void Update(uint64_t done, uint64_t total);
  // qemu-img ends the line only once the image was opened; a completed run shows 100% first.
  void End(bool opened, bool completed);

 private:
  void Print(float percent);

  bool enabled_;
  float last_printed_ = 0.f;
};

}  // namespace instar::cli
