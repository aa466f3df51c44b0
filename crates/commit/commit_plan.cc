#include "crates/commit/commit_plan.h"

#include "crates/base/checked.h"

namespace instar::commit {
namespace {

using base::Fail;

// What the layers above the base say about the bytes of one base cluster (bits, OR-ed).
constexpr uint8_t kNotOwned = 1u << 0;   // some bytes come from the base (or past the top)
constexpr uint8_t kOwnedZero = 1u << 1;  // some bytes are zeros a layer above allocates
constexpr uint8_t kOwnedData = 1u << 2;  // some bytes are data a layer above holds

CommitFailure ReadFailure(chain_read::ReadError e, uint32_t layer) {
  CommitFailure f;
  f.kind = CommitFailure::Kind::kRead;
  f.read_error = e;
  f.layer = layer;
  return f;
}

CommitFailure WriteFailure(image_write::WriteError e, uint32_t layer) {
  CommitFailure f;
  f.kind = CommitFailure::Kind::kWrite;
  f.write_error = e;
  f.layer = layer;
  return f;
}

uint64_t Min(uint64_t a, uint64_t b) { return a < b ? a : b; }

}  // namespace

CommitPlan::CommitPlan(const CommitLayers& layers, uint8_t* buffer, uint64_t buffer_bytes,
                       CommitProgress progress)
    : layers_(layers),
      buffer_(buffer),
      buffer_bytes_(buffer_bytes),
      progress_(progress),
      base_index_(layers.above->count()) {}

void CommitPlan::Report(uint64_t done, uint64_t total) {
  if (progress_.report == nullptr) return;
  // One report per percent at most: each is a host exit.
  if (done != total && done - reported_ < total / 100) return;
  reported_ = done;
  progress_.report(progress_.context, done, total);
}

base::Status<CommitFailure> CommitPlan::GrowBase() {
  chain_read::Chain* below = layers_.below;
  const uint64_t top = layers_.above->virtual_size();
  CommitTarget& base = *layers_.base;
  const uint64_t old_size = base.virtual_size();
  if (old_size >= top) return {};
  if (base.kind() == TargetKind::kVmdk) {
    CommitFailure f;
    f.kind = CommitFailure::Kind::kBaseCannotGrow;
    f.layer = base_index_;
    return Fail(f, top);
  }
  // qemu's bdrv_co_truncate: a backing file longer than the old size would show through the
  // new range, so it is zero-filled instead.
  const bool zero = below != nullptr && below->virtual_size() > old_size;
  auto grown = base.Grow(top, zero);
  if (!grown.ok()) return Fail(WriteFailure(grown.error().code, base_index_), grown.error().detail);
  stats_.base_grown = true;
  return {};
}

base::Status<CommitFailure> CommitPlan::Copy(chain_read::Layer* base_layer) {
  base_layer_ = base_layer;
  chain_read::Chain& above = *layers_.above;
  const uint64_t top = above.virtual_size();
  const uint64_t cluster = layers_.base->cluster_size();
  const uint64_t batch = Min(buffer_bytes_, kCommitBatchBytes) / cluster * cluster;
  uint64_t end = 0;
  if (batch == 0 || !base::CheckedAlignUp(top, cluster, &end)) {
    return Fail(WriteFailure(image_write::WriteError::kScratchTooSmall, base_index_), cluster);
  }
  uint64_t offset = 0;  // always on a base cluster boundary
  while (offset < top) {
    Report(offset, top);
    auto located = above.Locate(0, base_index_, offset, top - offset);
    if (!located.ok()) {
      return Fail(ReadFailure(located.error().code, kLayerUnknown), located.error().detail);
    }
    const chain_read::ChainExtent& run = located.value();
    if (run.layer == base_index_) {
      // Nothing above owns [offset, next): skip the whole base clusters it covers.
      const uint64_t skip_to = (offset + run.extent.length) / cluster * cluster;
      if (skip_to > offset) {
        offset = skip_to;
        continue;
      }
    }
    const uint64_t window_end = Min(offset + batch, end);
    TRY_STATUS(CommitWindow(offset, window_end));
    offset = window_end;
  }
  auto flushed = layers_.base->Flush();
  if (!flushed.ok()) {
    return Fail(WriteFailure(flushed.error().code, base_index_), flushed.error().detail);
  }
  Report(top, top);
  return {};
}

// Classifies the base clusters of [start, end) by what the layers above own in them, then
// writes each run of owned clusters: zero runs as zero clusters, the rest as data.
base::Status<CommitFailure> CommitPlan::CommitWindow(uint64_t start, uint64_t end) {
  chain_read::Chain& above = *layers_.above;
  const uint64_t top = above.virtual_size();
  const uint64_t cluster = layers_.base->cluster_size();
  const uint64_t count = (end - start) / cluster;
  for (uint64_t i = 0; i < count; ++i) classes_[i] = 0;
  const uint64_t owned_end = Min(end, top);
  for (uint64_t pos = start; pos < owned_end;) {
    auto located = above.Locate(0, base_index_, pos, owned_end - pos);
    if (!located.ok()) {
      return Fail(ReadFailure(located.error().code, kLayerUnknown), located.error().detail);
    }
    const chain_read::ChainExtent& run = located.value();
    const uint64_t length = run.extent.length;
    const uint8_t bit = run.layer == base_index_                            ? kNotOwned
                        : run.extent.kind == chain_read::ExtentKind::kZero ? kOwnedZero
                                                                            : kOwnedData;
    for (uint64_t c = (pos - start) / cluster; c <= (pos + length - 1 - start) / cluster; ++c) {
      classes_[c] |= bit;
    }
    pos += length;
  }
  // Past the top's end the base keeps what it has (it is larger than the top there).
  if (end > top && layers_.base->virtual_size() > top) classes_[count - 1] |= kNotOwned;

  uint64_t i = 0;
  while (i < count) {
    const uint8_t c = classes_[i];
    if ((c & (kOwnedZero | kOwnedData)) == 0) {
      ++i;
      continue;
    }
    const bool zero = c == kOwnedZero;
    uint64_t j = i + 1;
    while (j < count && (classes_[j] & (kOwnedZero | kOwnedData)) != 0 &&
           (classes_[j] == kOwnedZero) == zero) {
      ++j;
    }
    TRY_STATUS(WriteRun(start / cluster + i, j - i, zero));
    i = j;
  }
  return {};
}

base::Status<CommitFailure> CommitPlan::WriteRun(uint64_t first_cluster, uint64_t count,
                                                 bool zero) {
  CommitTarget& base = *layers_.base;
  const uint64_t cluster = base.cluster_size();
  base::Status<image_write::WriteError> written;
  if (zero) {
    written = base.Zero(first_cluster, count);
  } else {
    TRY_STATUS(Fill(first_cluster * cluster, (first_cluster + count) * cluster));
    written = base.Write(first_cluster, count, buffer_);
  }
  if (!written.ok()) {
    return Fail(WriteFailure(written.error().code, base_index_), written.error().detail);
  }
  stats_.bytes_committed += count * cluster;
  return {};
}

// What the top of the chain reads for [start, end) into the batch buffer: the owning layer
// above for owned runs, the base (and its backing chain) for the rest and past the top's end.
base::Status<CommitFailure> CommitPlan::Fill(uint64_t start, uint64_t end) {
  chain_read::Chain& above = *layers_.above;
  const uint64_t top = above.virtual_size();
  uint64_t pos = start;
  while (pos < end) {
    uint8_t* out = buffer_ + (pos - start);
    if (pos >= top) {
      auto read = layers_.base->Read(pos, end - pos, out, layers_.below, base_layer_);
      if (!read.ok()) return Fail(TargetFailure(read.error().code), read.error().detail);
      break;
    }
    auto located = above.Locate(0, base_index_, pos, Min(end, top) - pos);
    if (!located.ok()) {
      return Fail(ReadFailure(located.error().code, kLayerUnknown), located.error().detail);
    }
    const chain_read::ChainExtent& run = located.value();
    const uint64_t length = run.extent.length;
    if (run.layer == base_index_) {
      auto read = layers_.base->Read(pos, length, out, layers_.below, base_layer_);
      if (!read.ok()) return Fail(TargetFailure(read.error().code), read.error().detail);
    } else {
      auto read = above.layer(run.layer).ReadExtent(pos, run.extent, out);
      if (!read.ok()) return Fail(ReadFailure(read.error().code, run.layer), read.error().detail);
    }
    pos += length;
  }
  return {};
}

CommitFailure CommitPlan::TargetFailure(const TargetReadError& e) const {
  if (!e.from_layer) return WriteFailure(e.write_error, base_index_);
  // A compressed base cluster or the base's backing chain: which one is not known here.
  return ReadFailure(e.read_error, kLayerUnknown);
}

}  // namespace instar::commit
