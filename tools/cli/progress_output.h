// ProgressOutput: qemu-img's -p progress line on stdout, "    (NN.NN/100%)\r", redrawn the way
// qemu's progress printer decides (qemu_progress_print): when the value moves by more than the
// command's minimum step either way (rebase 2 points, commit 1), and at 0 and 100; ended with
// a newline. Disabled, it prints nothing. Host-only.
#pragma once

#include <cstdint>

namespace instar::cli {

class ProgressOutput {
 public:
  ProgressOutput(bool enabled, float min_step) : enabled_(enabled), min_step_(min_step) {}

  // The first line, 0%.
  void Start();
  // `done` of `total` units (bytes); ignored when total is 0 or done exceeds it.
  void Update(uint64_t done, uint64_t total);
  // qemu-img ends the line only once the image was opened; a completed run shows 100% first.
  void End(bool opened, bool completed);

 private:
  void Print(float percent);

  bool enabled_;
  float min_step_;
  float last_printed_ = 0.f;
};

}  // namespace instar::cli
