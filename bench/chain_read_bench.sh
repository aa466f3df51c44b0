#!/bin/bash
# Benchmark (not a test): read throughput of crates/chain_read (tests/chain_read:chain_to_raw,
# host reader over pread, 1 MiB reads) against `qemu-img convert -O raw` and `qemu-img dd`,
# writing the guest view of 1 GiB of fully allocated data to a raw file: a plain qcow2, the
# a two-layer chain (the top owns the first half), a compressed qcow2 and a
# streamOptimized vmdk. The images are read once first and the output goes to /dev/shm (when
# there is room), so this measures CPU and copying more than the disk. Prints the median wall
# seconds, MiB/s and the median CPU seconds (user + system: steadier on a loaded machine).
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
out="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
trap 'rm -rf "$work" "$out"' EXIT
cd "$work"

# 1 GiB of half random, half patterned data (compressible, but not to nothing).
for _ in $(seq 16); do head -c 32M /dev/urandom; head -c 32M < <(yes "chain_read bench"); done >src.raw
qemu-img convert -f raw -O qcow2 src.raw plain.qcow2
qemu-img convert -f raw -O qcow2 -c src.raw compressed.qcow2
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk
cp plain.qcow2 lower.qcow2
qemu-img create -q -f qcow2 -b lower.qcow2 -F qcow2 upper.qcow2 1G
qemu-io -c "write -P 0x42 0 512M" upper.qcow2 >/dev/null
cat ./*.qcow2 stream.vmdk >/dev/null

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
time_cmd() {  # LABEL COMMAND... (OUT in an argument stands for the output file)
  local label="$1" t cpu walls=() cpus=() args=() a
  shift
  for a in "$@"; do args+=("${a//OUT/$out/out.raw}"); done
  for ((i = 0; i < runs; i++)); do
    rm -f "$out/out.raw"
    read -r t cpu < <(/usr/bin/time -f "%e %U %S" "${args[@]}" 2>&1 >/dev/null | tail -n 1 |
                      awk '{ print $1, $2 + $3 }')
    walls+=("$t")
    cpus+=("$cpu")
  done
  t=$(printf '%s\n' "${walls[@]}" | median)
  cpu=$(printf '%s\n' "${cpus[@]}" | median)
  printf '%-36s %7.2f s %6.0f MiB/s  cpu %6.2f s\n' "$label" "$t" "$(echo "1024 / $t" | bc -l)" "$cpu"
}

for image in plain.qcow2 upper.qcow2 compressed.qcow2 stream.vmdk; do
  fmt=qcow2
  args=("qcow2:$image")
  case "$image" in
    stream.vmdk) fmt=vmdk; args=("vmdk:$image") ;;
    upper.qcow2) args=("qcow2:upper.qcow2" "qcow2:lower.qcow2") ;;
  esac
  time_cmd "chain_read      $image" "$TOOL" OUT "${args[@]}"
  time_cmd "convert -O raw  $image" qemu-img convert -f "$fmt" -O raw "$image" OUT
  time_cmd "qemu-img dd     $image" qemu-img dd -f "$fmt" -O raw bs=1M if="$image" of=OUT
done
