// The check guest binary's entry: the runtime's call table and the scratch region, handed to
// RunCheck.
#include "ops/common/operation_entry.h"
#include "ops/check/check.h"

INSTAR_OPERATION_ENTRY(instar::ops::RunCheck);
