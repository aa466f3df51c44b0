#!/bin/bash
# The CI slice of tools/fuzz/check_differential.py: a fixed seed and case range of random
# metadata edits, instar check against qemu-img check in every mode (the long runs are
# tools/fuzz/check_differential.py with a time budget; the differences it found are pinned
# as explicit cases in tests/differential).
# shellcheck source=../lib/testlib.sh
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
FUZZER="${TEST_SRCDIR}/${TEST_WORKSPACE}/tools/fuzz/check_differential.py"
check "check_differential seed 1, cases 0-79" \
  python3 "$FUZZER" --instar "$INSTAR" --seed 1 --first 0 --count 80 --seconds 600
# The same edits counted in many small refcount windows: still qemu's output and repairs.
check "check_differential seed 1, cases 0-39, 16-cluster windows" \
  python3 "$FUZZER" --instar "$INSTAR" --seed 1 --first 0 --count 40 --seconds 600 \
  --instar-args "--max-clusters-per-pass 16"
finish
