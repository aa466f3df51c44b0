#include "crates/rebase/safe_copy.h"

#include "crates/base/bytes.h"

namespace instar::rebase {
namespace {

using Failure = base::Error<CopyFailure>;

Failure OverlayFailed(base::Error<image_write::WriteError> e) {
  CopyFailure f;
  f.side = CopyFailure::Side::kOverlay;
  f.write = e.code;
  return base::Fail(f, e.detail);
}

// Reads [offset, offset + length) of `chain` (zeros without one); `valid` bytes lie inside
// the overlay, the rest of the run is padding and reads as zeros.
base::Status<CopyFailure> ReadChain(chain_read::Chain* chain, CopyFailure::Side side,
                                    uint64_t offset, uint64_t valid, uint64_t length,
                                    uint8_t* out) {
  uint64_t filled = 0;
  if (chain != nullptr) {
    auto read = chain->Read(offset, valid, out);
    if (!read.ok()) {
      CopyFailure f;
      f.side = side;
      f.read = read.error().code;
      return base::Fail(f, read.error().detail);
    }
    filled = valid;
  }
  for (uint64_t i = filled; i < length; ++i) out[i] = 0;
  return {};
}

}  // namespace

base::Result<CopyStats, CopyFailure> CopyDifferences(OverlayTarget& overlay,
                                                     chain_read::Chain* old_chain,
                                                     chain_read::Chain* new_chain,
                                                     const CopyBuffers& buffers,
                                                     const CopyProgress& progress) {
  CopyStats stats;
  const uint64_t unit = overlay.unit_bytes();
  const uint64_t size = overlay.virtual_size();
  const uint64_t run_limit = buffers.bytes / unit;
  if (unit == 0 || unit % 512 != 0 || run_limit == 0) {
    return OverlayFailed(base::Fail(image_write::WriteError::kScratchTooSmall));
  }
  const uint64_t units = size / unit + (size % unit != 0 ? 1 : 0);
  // Each pass consumes at least one unit, which bounds the loop by the overlay's size.
  for (uint64_t u = 0; u < units;) {
    auto owned = overlay.Owns(u);
    if (!owned.ok()) return OverlayFailed(owned.error());
    if (owned.value()) {
      ++u;
      continue;
    }
    uint64_t run = 1;
    while (run < run_limit && u + run < units) {
      auto next = overlay.Owns(u + run);
      if (!next.ok()) return OverlayFailed(next.error());
      if (next.value()) break;
      ++run;
    }
    const uint64_t offset = u * unit;
    const uint64_t length = run * unit;
    const uint64_t valid = size - offset < length ? size - offset : length;
    TRY_STATUS(ReadChain(old_chain, CopyFailure::Side::kOldChain, offset, valid, length,
                         buffers.old_content));
    TRY_STATUS(ReadChain(new_chain, CopyFailure::Side::kNewChain, offset, valid, length,
                         buffers.new_content));
    stats.units_compared += run;
    for (uint64_t i = 0; i < run;) {
      if (base::BytesEqual(buffers.old_content + i * unit, buffers.new_content + i * unit, unit)) {
        ++i;
        continue;
      }
      uint64_t j = i + 1;
      while (j < run && !base::BytesEqual(buffers.old_content + j * unit, buffers.new_content + j * unit,
                               unit)) {
        ++j;
      }
      const uint8_t* old_bytes = buffers.old_content + i * unit;
      const uint64_t bytes = (j - i) * unit;
      const bool zeros = base::AllZero(old_bytes, bytes);
      auto written = zeros ? overlay.Zero(u + i, j - i) : overlay.Write(u + i, j - i, old_bytes);
      if (!written.ok()) return OverlayFailed(written.error());
      if (!zeros) stats.bytes_copied += bytes;
      stats.units_copied += j - i;
      i = j;
    }
    u += run;
    if (progress.report != nullptr) {
      progress.report(progress.context, u * unit < size ? u * unit : size, size);
    }
  }
  auto flushed = overlay.Flush();
  if (!flushed.ok()) return OverlayFailed(flushed.error());
  return stats;
}

}  // namespace instar::rebase
