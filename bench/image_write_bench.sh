#!/bin/bash
# Benchmark (not a test): the qcow2 writer filling an empty 1 GiB image (64 KiB clusters) in
# 4 MiB requests through the host test tool (pwrite per step, no VM), against qemu-io writing
# the same bytes in 4 MiB requests. Both end with the data on the file system (sync). Also
# prints the number of steps the writer emitted (one data step per contiguous run).
# Usage: bench/image_write_bench.sh [RUNS]   (BAZEL_OUTPUT_BASE=DIR builds with that base)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
startup=()
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && startup=(--output_base="$BAZEL_OUTPUT_BASE")
(cd "$root" && bazel "${startup[@]}" build --noshow_progress //tests/image_write:image_write_tool >/dev/null 2>&1)
tool="$(cd "$root" && bazel "${startup[@]}" info bazel-bin 2>/dev/null)/tests/image_write/image_write_tool"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

time_runs() {  # COMMAND...: median wall seconds, each on a fresh empty image
  local i start end
  for ((i = 0; i < runs; i++)); do
    rm -f "$work/run.qcow2"
    qemu-img create -q -f qcow2 -o cluster_size=65536 "$work/run.qcow2" 1G
    start=$(date +%s.%N)
    "$@" >"$work/out" 2>&1
    sync
    end=$(date +%s.%N)
    echo "$end - $start" | bc
  done | median
}

writer=$(time_runs "$tool" fill --format qcow2 --image "$work/run.qcow2" --run 64)
steps=$(cat "$work/out")
qemu=$(time_runs sh -c "for o in \$(seq 0 4 1020); do echo \"write -P 90 \${o}M 4M\"; done | qemu-io $work/run.qcow2")
printf '%-28s %8s s  (%s)\n' "qcow2 writer, 4 MiB runs" "$writer" "$steps"
printf '%-28s %8s s\n' "qemu-io, 4 MiB writes" "$qemu"
