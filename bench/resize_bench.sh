#!/bin/bash
# Benchmark (not a test): `instar resize` vs `qemu-img resize` wall time for a qcow2 grow that
# needs both a new L1 table (at qemu's 32 MiB cap) and a larger, relocated refcount table, on
# a ~4 GiB image whose every data cluster is allocated (preallocation=metadata, 4 KiB
# clusters, 64-bit refcounts: the refcount table is nearly full). Each run resizes a fresh
# copy; copies are not timed. Prints the medians and the ratio.
# Usage: bench/resize_bench.sh [RUNS]   (INSTAR=/path/to/instar skips the build;
#        BAZEL_OUTPUT_BASE=DIR builds with that output base)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
if [ -z "${INSTAR:-}" ]; then
  startup=()
  [ -n "${BAZEL_OUTPUT_BASE:-}" ] && startup=(--output_base="$BAZEL_OUTPUT_BASE")
  (cd "$root" && bazel "${startup[@]}" build --noshow_progress //tools/cli:instar >/dev/null 2>&1)
  INSTAR="$(cd "$root" && bazel "${startup[@]}" info bazel-bin 2>/dev/null)/tools/cli/instar"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=64,preallocation=metadata \
  "$work/base.qcow2" 4070M
target=8T

header() {  # FILE -> "l1_size l1_offset refcount_table_offset refcount_table_clusters"
  local l1s l1o rto rtc
  l1s=$(od -An -t u4 --endian=big -j 36 -N 4 "$1" | tr -d ' ')
  l1o=$(od -An -t u8 --endian=big -j 40 -N 8 "$1" | tr -d ' ')
  rto=$(od -An -t u8 --endian=big -j 48 -N 8 "$1" | tr -d ' ')
  rtc=$(od -An -t u4 --endian=big -j 56 -N 4 "$1" | tr -d ' ')
  echo "$l1s $l1o $rto $rtc"
}

# time_runs TOOL...: median wall seconds over $runs runs on fresh copies.
time_runs() {
  local times=() i start end
  for ((i = 0; i < runs; i++)); do
    cp --sparse=always "$work/base.qcow2" "$work/run.qcow2"
    sync
    start=$(date +%s.%N)
    "$@" "$work/run.qcow2" "$target" >/dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

before=$(header "$work/base.qcow2")
q=$(time_runs qemu-img resize)
qemu_after=$(header "$work/run.qcow2")
i=$(time_runs "$INSTAR" resize)
instar_after=$(header "$work/run.qcow2")
qemu-img check "$work/run.qcow2" >/dev/null || { echo "instar's result is not clean" >&2; exit 1; }

echo "image: 4070 MiB qcow2, 4 KiB clusters, 64-bit refcounts, metadata preallocated; grow to $target"
echo "header (l1_size l1_offset reftable_offset reftable_clusters):"
echo "  before:           $before"
echo "  after qemu-img:   $qemu_after"
echo "  after instar:     $instar_after"
echo "median of $runs runs: qemu-img ${q}s, instar ${i}s"
echo "ratio instar/qemu-img: $(echo "scale=3; $i / $q" | bc)"
