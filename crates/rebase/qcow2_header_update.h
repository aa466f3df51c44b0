// The qcow2 header cluster as qemu 7.2 rewrites it when it changes the backing file
// (block/qcow2.c, qcow2_update_header): the header fields from its open-time state, v3 fields
// only for v3 images, header fields it does not know kept, then the extensions in qemu's
// order (backing format, external data file, the feature name table it writes for v3 images
// with clusters above 4 KiB, bitmaps, every unknown extension in file order), the end marker,
// and the backing file name right after it; the rest of the cluster is zeros. Refuses what
// qemu refuses (no room: ENOSPC; a name above 1023 bytes or over a raw external data file:
// EINVAL) and images qemu would repair or could not open read/write. Pure, freestanding;
// writes into a caller-given cluster.
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"
#include "crates/qcow2/header.h"
#include "crates/rebase/new_backing.h"
#include "crates/rebase/plan_error.h"

namespace instar::rebase {

// `head` is the image's first cluster (header.cluster_size bytes, zero-filled past the end of
// the file) and `header` its parse; `out` receives header.cluster_size bytes.
base::Status<PlanError> BuildQcow2Header(base::ByteView head, const qcow2::Header& header,
                                         const NewBacking& backing, uint8_t* out);

}  // namespace instar::rebase
