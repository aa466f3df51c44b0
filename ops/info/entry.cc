// The info guest binary's entry: the runtime's call table and the scratch region, handed to
// RunInfo.
#include "ops/common/operation_entry.h"
#include "ops/info/info.h"

INSTAR_OPERATION_ENTRY(instar::ops::RunInfo);
