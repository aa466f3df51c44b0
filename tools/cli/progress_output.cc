#include "tools/cli/progress_output.h"

#include <cstdio>

#include "vmm/base/std_stream.h"
#include "vmm/base/text_format.h"

namespace instar::cli {

void ProgressOutput::Print(float percent) {
  last_printed_ = percent;
  EmitNow(stdout, Format("    (%3.2f/100%%)\r", static_cast<double>(percent)));
}

void ProgressOutput::Start() {
  if (enabled_) Print(0.f);
}

void ProgressOutput::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0 || done > total) return;
  const float percent = static_cast<float>(static_cast<double>(done) * 100.0 /
                                           static_cast<double>(total));
  if (percent > last_printed_ + min_step_ || percent < last_printed_ - min_step_ ||
      percent == 100.f || percent == 0.f) {
    Print(percent);
  }
}

void ProgressOutput::End(bool opened, bool completed) {
  if (!enabled_ || !opened) return;
  if (completed) Print(100.f);
  EmitNow(stdout, "\n");
}

}  // namespace instar::cli
