// qemu-img's -p progress line ("    (12.00/100%)\r" on stdout, a newline at the end), printed
// the way qemu-progress.c decides: at 0, at 100, and whenever the value has moved more than
// 2 points since the last line. Host-only.
#pragma once

#include <cstdint>

namespace instar::cli {

class ProgressPrinter {
 public:
  // Prints the first line (0.00) when `enabled`.
  explicit ProgressPrinter(bool enabled);
  // The guest's done/total; ignored when disabled or total is 0.
  void Update(uint64_t done, uint64_t total);
  // Prints 100.00 and the final newline.
  void Finish();

 private:
  void Print(double value);

  bool enabled_;
  double last_printed_ = 0;
};

}  // namespace instar::cli
