// The commit guest binary's entry: the runtime's call table and the scratch region, handed to
// RunCommit.
#include "ops/common/operation_entry.h"
#include "ops/commit/commit.h"

INSTAR_OPERATION_ENTRY(instar::ops::RunCommit);
