#!/bin/bash
# Runs every fuzz target (Bazel tag "fuzz") under libFuzzer with ASan and UBSan for a time
# budget each, starting from its checked-in corpus, and prints executions and crashes per
# target. Crashing inputs are minimized and copied into the target's corpus directory, where
# the normal test suite replays them as regression tests (commit them once fixed).
# An input that runs longer than INSTAR_FUZZ_TIMEOUT seconds (default 25) counts as a crash
# (a hang). INSTAR_FUZZ_OUTPUT_BASE and INSTAR_FUZZ_JOBS choose Bazel's output base and jobs.
# usage: tools/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
tools/setup || exit 1
budget="${1:-60}"
shift || true
base="${INSTAR_FUZZ_OUTPUT_BASE:-$HOME/.cache/bazel-instar-fuzz-$(printf %s "$root" | md5sum | cut -c1-12)}"
timeout="${INSTAR_FUZZ_TIMEOUT:-25}"
jobs=()
[ -n "${INSTAR_FUZZ_JOBS:-}" ] && jobs=(--jobs="$INSTAR_FUZZ_JOBS")
bazel_fuzz() { bazel --output_base="$base" "$@"; }

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(bazel_fuzz query 'attr(tags, "fuzz", tests(//crates/... + //ops/... + //vmm/...))' 2>/dev/null)
fi
bazel_fuzz build --config=fuzz "${jobs[@]}" --noshow_progress "${targets[@]}" 2>&1 | grep -E "ERROR|error:" && exit 1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "$(date -u +%Y-%m-%d) ${budget}s per target, timeout ${timeout}s"
printf '%-40s %12s %10s %8s\n' target executions exec/s crashes
total_crashes=0
for target in "${targets[@]}"; do
  pkg="${target%%:*}"
  pkg="${pkg#//}"
  name="${target##*:}"
  binary="$(bazel_fuzz info --config=fuzz bazel-bin 2>/dev/null)/$pkg/$name"
  corpus_src="$(grep -A6 "name = \"$name\"" "$pkg/BUILD.bazel" | sed -n 's/.*corpus = "\([^"]*\)".*/\1/p' | head -1)"
  corpus="$work/$name"
  mkdir -p "$corpus"
  cp -r "$pkg/$corpus_src/." "$corpus/" 2>/dev/null
  # libFuzzer stops at a crash: run again for what is left of the budget (at most 5 times).
  # A crash counts once per distinct first error line; one input per crash is minimized.
  execs=0
  runs=0
  crashes=0
  : >"$work/$name.seen"
  start=$(date +%s)
  while :; do
    left=$((budget - ($(date +%s) - start)))
    [ "$left" -gt 0 ] && [ "$runs" -lt 5 ] || break
    runs=$((runs + 1))
    log="$work/$name.log"
    rm -rf "$work/$name-crashes" && mkdir -p "$work/$name-crashes"
    "$binary" "$corpus" -max_total_time="$left" -timeout="$timeout" \
      -artifact_prefix="$work/$name-crashes/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$n" ] || n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    execs=$((execs + ${n:-0}))
    [ "$rc" = 0 ] && break
    what=$(grep -m1 -E "ERROR: |fake call table: |runtime error|Assertion" "$log" |
      sed 's/==[0-9]*==//; s/0x[0-9a-f]*/ADDR/g')
    grep -qxF -- "$what" "$work/$name.seen" && continue
    printf '%s\n' "$what" >>"$work/$name.seen"
    crashes=$((crashes + 1))
    echo "  $name: $what" >&2
    crash=$(find "$work/$name-crashes" -type f | head -1)
    [ -n "$crash" ] || continue
    minimized="$pkg/$corpus_src/$(basename "$crash")"
    "$binary" -minimize_crash=1 -max_total_time=20 -timeout="$timeout" \
      -exact_artifact_path="$minimized" "$crash" >/dev/null 2>&1
    [ -f "$minimized" ] || cp "$crash" "$minimized"
    echo "  crash kept as $minimized" >&2
  done
  seconds=$(($(date +%s) - start))
  speed=$((execs / (seconds > 0 ? seconds : 1)))
  total_crashes=$((total_crashes + crashes))
  printf '%-40s %12s %10s %8s\n' "$target" "$execs" "$speed" "$crashes"
done
echo "fuzzing done: ${#targets[@]} targets, ${budget}s each, $total_crashes crashes"
[ "$total_crashes" = 0 ]
