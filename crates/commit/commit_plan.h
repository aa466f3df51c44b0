// CommitPlan: the commit step program. For every guest range the layers above the base own
// (qemu's bdrv_is_allocated_above(top, base)), it reads what the top of the chain shows there
// and makes the base hold it, in whole base clusters: a base cluster only partly owned above is
// completed with what the base itself (or its backing chain) reads there, so every base
// cluster reads afterwards exactly what the top read before. Clusters the layers above own
// entirely as zeros become zero clusters in the base (qemu's mirror writes zeroes there);
// everything else is written as data, in runs of up to kCommitBatchBytes. A base smaller than
// the top is grown first, as qemu's commit job does (zero-filling the new range when the
// base's own backing file is longer than the base, qemu's truncate rule). Emptying the top
// afterwards is the caller's (a second writer on the top, DiscardClusters over all of it).
//
// Crash safety comes from the writer: each base cluster reads old or new content after any
// single write; Run flushes the base last. Freestanding; the batch buffer comes from the
// caller (CommitPlan allocates nothing; it holds a 4 KiB per-window classification).
#pragma once

#include <stdint.h>

#include "crates/base/result.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"
#include "crates/chain_read/read_error.h"
#include "crates/commit/commit_target.h"
#include "crates/image_write/write_error.h"

namespace instar::commit {

// Bytes read and written per batch: whole base clusters, large enough to keep exits few.
inline constexpr uint64_t kCommitBatchBytes = 2u << 20;

// CommitFailure::layer when the failing layer is not known (a chain read names no layer).
inline constexpr uint32_t kLayerUnknown = 0xFFFFFFFFu;

// Why commit stopped, and at which layer (guest-view index: the layers above the base first,
// then the base, then its backing chain).
struct CommitFailure {
  enum class Kind : uint8_t {
    kRead,            // read_error from a layer
    kWrite,           // write_error from the base's writer
    kBaseCannotGrow,  // the base is smaller than the top and its format cannot grow (vmdk)
  };
  Kind kind = Kind::kRead;
  uint32_t layer = 0;
  chain_read::ReadError read_error = chain_read::ReadError::kIoError;
  image_write::WriteError write_error = image_write::WriteError::kIoError;
};

struct CommitLayers {
  chain_read::Chain* above = nullptr;  // the layers above the base, top first
  CommitTarget* base = nullptr;
  chain_read::Chain* below = nullptr;  // the base's backing chain; null when none
};

// Progress in guest bytes of the top (done of total); may be empty.
struct CommitProgress {
  void* context = nullptr;
  void (*report)(void* context, uint64_t done, uint64_t total) = nullptr;
};

struct CommitStats {
  uint64_t bytes_committed = 0;  // base bytes written as data or zeros
  bool base_grown = false;
};

class CommitPlan {
 public:
  // `buffer` holds kCommitBatchBytes (and at least one base cluster).
  CommitPlan(const CommitLayers& layers, uint8_t* buffer, uint64_t buffer_bytes,
             CommitProgress progress);

  // Grows the base if it is smaller than the top; to be called before Copy.
  base::Status<CommitFailure> GrowBase();
  // Commits every owned range and flushes the base. `base_layer` reads the base by its own
  // tables, for its compressed clusters (null for raw); a grown qcow2 base may have moved its
  // tables, so it must be opened after GrowBase.
  base::Status<CommitFailure> Copy(chain_read::Layer* base_layer);

  const CommitStats& stats() const { return stats_; }

 private:
  base::Status<CommitFailure> CommitWindow(uint64_t start, uint64_t end);
  base::Status<CommitFailure> Fill(uint64_t start, uint64_t end);
  base::Status<CommitFailure> WriteRun(uint64_t first_cluster, uint64_t count, bool zero);
  CommitFailure TargetFailure(const TargetReadError& e) const;
  void Report(uint64_t done, uint64_t total);

  CommitLayers layers_;
  chain_read::Layer* base_layer_ = nullptr;
  uint8_t* buffer_;
  uint64_t buffer_bytes_;
  CommitProgress progress_;
  CommitStats stats_;
  uint32_t base_index_ = 0;  // guest-view index of the base
  uint64_t reported_ = 0;    // progress last reported
  // Per base cluster of the current window: kNotOwned / kOwnedZero / kOwnedData bits.
  uint8_t classes_[kCommitBatchBytes / 512] = {};
};

}  // namespace instar::commit
