#!/bin/bash
# Benchmark (not a test): read throughput of crates/chain_read (tests/chain_read:chain_to_raw,
# host reader over pread, 1 MiB reads) against `qemu-img convert -O raw` and `qemu-img dd`,
# writing the guest view of 1 GiB of fully allocated data to a raw file: a plain qcow2, the
# a two-layer chain (the top owns the first half), a compressed qcow2 and a
# streamOptimized vmdk. The page cache is warm (the images are read once first), so this
# measures CPU and copying, not the disk. Prints the median wall seconds and MiB/s.
# Usage: bench/chain_read_bench.sh [RUNS]   (TOOL=/path/to/chain_to_raw skips the build;
#        BAZEL_OUTPUT_BASE=DIR builds with that output base)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
if [ -z "${TOOL:-}" ]; then
  startup=()
  [ -n "${BAZEL_OUTPUT_BASE:-}" ] && startup=(--output_base="$BAZEL_OUTPUT_BASE")
  (cd "$root" && bazel "${startup[@]}" build --noshow_progress //tests/chain_read:chain_to_raw >/dev/null 2>&1)
  TOOL="$(cd "$root" && bazel "${startup[@]}" info bazel-bin 2>/dev/null)/tests/chain_read/chain_to_raw"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# 1 GiB of half random, half patterned data (compressible, but not to nothing).
for _ in $(seq 16); do head -c 32M /dev/urandom; yes "chain_read bench" | head -c 32M; done >src.raw
qemu-img convert -f raw -O qcow2 src.raw plain.qcow2
qemu-img convert -f raw -O qcow2 -c src.raw compressed.qcow2
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk
cp plain.qcow2 lower.qcow2
qemu-img create -q -f qcow2 -b lower.qcow2 -F qcow2 upper.qcow2 1G
qemu-io -c "write -P 0x42 0 512M" upper.qcow2 >/dev/null
cat ./*.qcow2 stream.vmdk >/dev/null

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
time_cmd() {  # LABEL COMMAND...
  local label="$1" t times=() s e
  shift
  for ((i = 0; i < runs; i++)); do
    rm -f out.raw
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc)")
  done
  t=$(printf '%s\n' "${times[@]}" | median)
  printf '%-44s %8.2f s %8.0f MiB/s\n' "$label" "$t" "$(echo "1024 / $t" | bc -l)"
}

for image in plain.qcow2 upper.qcow2 compressed.qcow2 stream.vmdk; do
  fmt=qcow2
  args=("qcow2:$image")
  case "$image" in
    stream.vmdk) fmt=vmdk; args=("vmdk:$image") ;;
    upper.qcow2) args=("qcow2:upper.qcow2" "qcow2:lower.qcow2") ;;
  esac
  time_cmd "chain_read   $image" "$TOOL" out.raw "${args[@]}"
  time_cmd "convert -O raw $image" qemu-img convert -f "$fmt" -O raw "$image" out.raw
  time_cmd "qemu-img dd  $image" qemu-img dd -f "$fmt" -O raw bs=1M if="$image" of=out.raw
done
