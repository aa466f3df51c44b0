// NewBacking: what an overlay will name as its backing file after a rebase, exactly as qemu
// stores it (the -b and -F strings). Header-only, freestanding.
#pragma once

#include "crates/base/bytes.h"

namespace instar::rebase {

struct NewBacking {
  base::ByteView name;    // empty: the overlay will have no backing file
  base::ByteView format;  // empty: no backing format
};

}  // namespace instar::rebase
