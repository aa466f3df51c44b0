#!/bin/bash
# Runs every crash-consistency sweep (test targets tagged "crash-sweep", built on
# tests/lib/crash_sweep.h) and prints, per sweep, how many interruption points were tried and
# how many failed, then the totals. Extra arguments go to `bazel test` (e.g. --config=asan).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools/setup || exit 1
mapfile -t targets < <(bazel query --noshow_progress 'attr(tags, "crash-sweep", //tests/...)' 2>/dev/null)
[ "${#targets[@]}" -gt 0 ] || { echo "no crash-sweep targets found" >&2; exit 1; }
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
bazel test --noshow_progress --nocache_test_results --test_output=all "$@" "${targets[@]}" \
  >"$log" 2>&1
rc=$?
grep -E '^crash sweep ' "$log" | sort
awk '/^crash sweep / { for (i = 1; i <= NF; ++i) { if ($i == "interruption") p += $(i - 1); if ($i == "failed") f += $(i - 1) } n++ }
     END { printf "%d sweeps, %d interruption points, %d failed\n", n, p, f }' "$log"
grep -E '^//[^ ]+ +(PASSED|FAILED|TIMEOUT)' "$log"
exit "$rc"
