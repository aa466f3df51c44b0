#!/bin/bash
# The CI slice of tools/fuzz/check_differential.py: a fixed seed and case range of random
# metadata edits, instar check against qemu-img check in every mode (the long runs are
# tools/fuzz/check_differential.py with a time budget).
# shellcheck source=../lib/testlib.sh
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
FUZZER="${TEST_SRCDIR}/${TEST_WORKSPACE}/tools/fuzz/check_differential.py"
check "check_differential seed 1, cases 0-59" \
  python3 "$FUZZER" --instar "$INSTAR" --seed 1 --first 0 --count 60 --seconds 600
# Cases that found differences once (an open-time message, the total cluster count).
for first in 265 425; do
  check "check_differential seed 1, cases $first-$((first + 9))" \
    python3 "$FUZZER" --instar "$INSTAR" --seed 1 --first "$first" --count 10 --seconds 300
done
finish
