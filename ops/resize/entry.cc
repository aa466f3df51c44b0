// The resize guest binary's entry: the runtime's call table and the scratch region, handed to
// RunResize.
#include "ops/common/operation_entry.h"
#include "ops/resize/resize.h"

INSTAR_OPERATION_ENTRY(instar::ops::RunResize);
