// The rebase guest binary's entry: the runtime's call table and the scratch region, handed to
// RunRebase.
#include "ops/common/operation_entry.h"
#include "ops/rebase/rebase.h"

INSTAR_OPERATION_ENTRY(instar::ops::RunRebase);
