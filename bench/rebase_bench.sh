#!/bin/bash
# Benchmark (not a test): safe `instar rebase` vs `qemu-img rebase` wall time, side by side,
# in both sandboxes. Two cases over a 1 GiB overlay (64 KiB clusters, nothing allocated in
# it) on a 1 GiB base full of data:
#   differs: the new backing file is empty, so ~1 GiB of old-chain data is copied in;
#   same:    the new backing file is a copy of the base, so everything is compared, nothing
#            copied.
# Each run rebases a fresh copy of the overlay; copies are not timed. Prints medians, ratios.
# Usage: bench/rebase_bench.sh [RUNS]   (INSTAR=/path/to/instar skips the build;
#        BAZEL_OUTPUT_BASE=DIR builds with that output base; WORK=DIR puts images there)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
if [ -z "${INSTAR:-}" ]; then
  startup=()
  [ -n "${BAZEL_OUTPUT_BASE:-}" ] && startup=(--output_base="$BAZEL_OUTPUT_BASE")
  (cd "$root" && bazel "${startup[@]}" build --noshow_progress //tools/cli:instar >/dev/null 2>&1)
  INSTAR="$(cd "$root" && bazel "${startup[@]}" info bazel-bin 2>/dev/null)/tools/cli/instar"
fi
work="$(mktemp -d "${WORK:-/tmp}/rebase_bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

qemu-img create -q -f qcow2 base.qcow2 1G
qemu-io -c "write -P 0x5a 0 1G" base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2 1G
qemu-img create -q -f qcow2 empty.qcow2 1G
cp base.qcow2 same.qcow2

# time_runs NEW TOOL...: median wall seconds of `TOOL rebase -b NEW -F qcow2 run.qcow2`.
time_runs() {
  local new="$1" times=() i start end
  shift
  for ((i = 0; i < runs; i++)); do
    cp overlay.qcow2 run.qcow2
    sync
    start=$(date +%s.%N)
    "$@" rebase -b "$new" -F qcow2 run.qcow2 >/dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  qemu-img compare -q overlay.qcow2 run.qcow2 || { echo "content changed ($*)" >&2; exit 1; }
  qemu-img check -q run.qcow2 || { echo "not clean ($*)" >&2; exit 1; }
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

sandboxes="process"
[ -r /dev/kvm ] && [ -w /dev/kvm ] && sandboxes="kvm process"
echo "overlay: 1 GiB qcow2 (64 KiB clusters) over a 1 GiB base full of data; median of $runs runs"
for case in differs:empty.qcow2 same:same.qcow2; do
  name="${case%%:*}" new="${case##*:}"
  q=$(time_runs "$new" qemu-img)
  line="$name: qemu-img ${q}s"
  for sandbox in $sandboxes; do
    i=$(INSTAR_SANDBOX=$sandbox time_runs "$new" "$INSTAR")
    line+=", instar/$sandbox ${i}s (ratio $(echo "scale=3; $i / $q" | bc))"
  done
  echo "$line"
done
