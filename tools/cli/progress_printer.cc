#include "tools/cli/progress_printer.h"

#include <cstdio>

namespace instar::cli {
namespace {

constexpr double kMinStep = 2.0;  // qemu-img's qemu_progress_init(progress, 2.0)

}  // namespace

ProgressPrinter::ProgressPrinter(bool enabled) : enabled_(enabled) {
  if (enabled_) Print(0);
}

void ProgressPrinter::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  double value = 100.0 * static_cast<double>(done) / static_cast<double>(total);
  if (value > 100) value = 100;
  if (value > last_printed_ + kMinStep || value == 100 || value == 0) Print(value);
}

void ProgressPrinter::Finish() {
  if (!enabled_) return;
  Print(100);
  std::printf("\n");
  std::fflush(stdout);
}

void ProgressPrinter::Print(double value) {
  last_printed_ = value;
  std::printf("    (%3.2f/100%%)\r", value);
  std::fflush(stdout);
}

}  // namespace instar::cli
