#!/bin/bash
# Runs every fuzz target (Bazel tag "fuzz") under libFuzzer with ASan and UBSan for a time
# budget each, starting from its checked-in corpus, and prints executions and crashes per
# target. Crashing inputs are minimized and copied into the target's corpus directory, where
# the normal test suite replays them as regression tests (commit them once fixed).
# usage: tools/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
tools/setup || exit 1
budget="${1:-60}"
shift || true
base="$HOME/.cache/bazel-instar-fuzz-$(printf %s "$root" | md5sum | cut -c1-12)"
bazel_fuzz() { bazel --output_base="$base" "$@"; }

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(bazel_fuzz query 'attr(tags, "fuzz", tests(//crates/... + //ops/... + //vmm/...))' 2>/dev/null)
fi
bazel_fuzz build --config=fuzz --noshow_progress "${targets[@]}" 2>&1 | grep -E "ERROR|error:" && exit 1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%-40s %12s %10s %8s\n' target executions exec/s crashes
total_crashes=0
for target in "${targets[@]}"; do
  pkg="${target%%:*}"
  pkg="${pkg#//}"
  name="${target##*:}"
  binary="$(bazel_fuzz info --config=fuzz bazel-bin 2>/dev/null)/$pkg/$name"
  corpus_src="$(sed -n 's/.*corpus = "\([^"]*\)".*/\1/p' <(grep -A3 "name = \"$name\"" "$pkg/BUILD.bazel") | head -1)"
  corpus="$work/$name"
  mkdir -p "$corpus" "$work/$name-crashes"
  cp -r "$pkg/$corpus_src/." "$corpus/" 2>/dev/null
  log="$work/$name.log"
  "$binary" "$corpus" -max_total_time="$budget" -artifact_prefix="$work/$name-crashes/" \
    -print_final_stats=1 >"$log" 2>&1
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(find "$work/$name-crashes" -type f | wc -l)
  for crash in "$work/$name-crashes"/*; do
    [ -f "$crash" ] || continue
    minimized="$pkg/$corpus_src/$(basename "$crash")"
    "$binary" -minimize_crash=1 -max_total_time=30 -exact_artifact_path="$minimized" "$crash" \
      >/dev/null 2>&1 || cp "$crash" "$minimized"
    echo "  crash kept as $minimized" >&2
  done
  total_crashes=$((total_crashes + crashes))
  printf '%-40s %12s %10s %8s\n' "$target" "${execs:-?}" "${speed:-?}" "$crashes"
done
echo "fuzzing done: ${#targets[@]} targets, ${budget}s each, $total_crashes crashes"
[ "$total_crashes" = 0 ]
