#!/bin/bash
# Benchmark (not a test): `instar commit` vs `qemu-img commit` wall time for an overlay holding
# ~1 GiB of data (64 KiB clusters, written in 1 MiB runs with gaps, so half of the overlay's
# 2 GiB is allocated) committed into a base whose every cluster holds older data, the overlay
# emptied afterwards. Each run commits fresh copies of both files (copies are not timed); the
# runs alternate between the tools. Prints the medians and the ratio, per sandbox.
# Usage: bench/commit_bench.sh [RUNS]   (INSTAR=/path/to/instar skips the build;
#        BAZEL_OUTPUT_BASE=DIR builds with that output base; SANDBOXES="kvm process")
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
if [ -z "${INSTAR:-}" ]; then
  startup=()
  [ -n "${BAZEL_OUTPUT_BASE:-}" ] && startup=(--output_base="$BAZEL_OUTPUT_BASE")
  (cd "$root" && bazel "${startup[@]}" build --noshow_progress //tools/cli:instar >/dev/null 2>&1)
  INSTAR="$(cd "$root" && bazel "${startup[@]}" info bazel-bin 2>/dev/null)/tools/cli/instar"
fi
if [ -z "${SANDBOXES:-}" ]; then
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then SANDBOXES="kvm process"; else SANDBOXES="process"; fi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/src" "$work/run"
qemu-img create -q -f qcow2 "$work/src/base.qcow2" 2G
fill=()
for ((mib = 0; mib < 2048; mib += 256)); do fill+=(-c "write -P 0x11 ${mib}M 256M"); done
qemu-io "${fill[@]}" "$work/src/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$work/src/top.qcow2" 2G
io=()
for ((mib = 0; mib < 2048; mib += 2)); do io+=(-c "write -P $((mib % 251 + 1)) ${mib}M 1M"); done
qemu-io "${io[@]}" "$work/src/top.qcow2" >/dev/null

fresh() {
  cp --sparse=always "$work/src/base.qcow2" "$work/src/top.qcow2" "$work/run/"
  sync
}

# once TOOL...: wall seconds of one commit on fresh copies.
once() {
  local start end
  fresh
  start=$(date +%s.%N)
  "$@" commit -q "$work/run/top.qcow2" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

echo "overlay: 2 GiB qcow2, 64 KiB clusters, $(qemu-img info --output=json "$work/src/top.qcow2" |
  grep '"actual-size"' | tr -dc 0-9 | awk '{printf "%.0f MiB", $1 / 1048576}') allocated; base: 2 GiB, all allocated"
for sandbox in $SANDBOXES; do
  q=() i=()
  for ((r = 0; r < runs; r++)); do
    q+=("$(once qemu-img)")
    i+=("$(INSTAR_SANDBOX=$sandbox once "$INSTAR")")
  done
  # The last instar run's result against a fresh qemu-img commit of the same chain.
  mkdir -p "$work/ref" && cp --sparse=always "$work/src/base.qcow2" "$work/src/top.qcow2" "$work/ref/"
  qemu-img commit -q "$work/ref/top.qcow2"
  qemu-img compare -q "$work/ref/base.qcow2" "$work/run/base.qcow2" ||
    { echo "instar's base differs from qemu-img's" >&2; exit 1; }
  qemu-img check -q "$work/run/base.qcow2" || { echo "instar's base is not clean" >&2; exit 1; }
  qm=$(median "${q[@]}")
  im=$(median "${i[@]}")
  echo "$sandbox: median of $runs runs: qemu-img ${qm}s, instar ${im}s, ratio instar/qemu-img $(echo "scale=3; $im / $qm" | bc)"
done
