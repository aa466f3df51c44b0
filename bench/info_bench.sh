#!/bin/bash
# Benchmark (not a test): median wall time of `instar info` against `qemu-img info` on a plain
# qcow2, a depth-5 chain with --backing-chain, and a split vmdk. Uses hyperfine when it is
# installed (set OUT=DIR to keep its JSON exports), else a loop of $RUNS runs per command.
#
#   bazel --output_base=/root/.cache/bazel-wt-info build //tools/cli:instar
#   bench/info_bench.sh [path/to/instar]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
INSTAR="${1:-$ROOT/bazel-bin/tools/cli/instar}"
RUNS="${RUNS:-30}"
WORK="$(mktemp -d /tmp/instar-bench.XXXXXX)"
OUT="${OUT:-$WORK}"
trap 'rm -rf "$WORK"' EXIT
[ -x "$INSTAR" ] || { echo "build it first: $INSTAR not found" >&2; exit 1; }

cd "$WORK"
qemu-img create -q -f qcow2 plain.qcow2 10G
qemu-img create -q -f qcow2 chain0.qcow2 10G
for i in 1 2 3 4 5; do
  qemu-img create -q -f qcow2 -b chain$((i - 1)).qcow2 -F qcow2 chain$i.qcow2
done
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 10G

# median_ms COMMAND...: the median of $RUNS wall times, in milliseconds.
median_ms() {
  local name="$1"
  shift
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/$name.json" "$*" >/dev/null
    python3 -c 'import json,sys; print("%.2f" % (1000 * json.load(open(sys.argv[1]))["results"][0]["median"]))' \
      "$OUT/$name.json"
  else
    local times=()
    for _ in $(seq "$RUNS"); do
      local t0 t1
      t0=$(date +%s%N)
      "$@" >/dev/null
      t1=$(date +%s%N)
      times+=($(((t1 - t0) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f\n", a[int((NR+1)/2)]/1000}'
  fi
}

printf '%-34s %12s %12s %8s\n' "case" "qemu-img ms" "instar ms" "ratio"
row() {
  local name="$1"
  shift
  local q i
  q=$(median_ms "$name-qemu" qemu-img info "$@")
  i=$(median_ms "$name-instar" "$INSTAR" info "$@")
  printf '%-34s %12s %12s %8s\n' "$name" "$q" "$i" "$(python3 -c "print('%.2f' % ($i / $q))")"
}
row "qcow2 plain" plain.qcow2
row "qcow2 plain --output=json" --output=json plain.qcow2
row "qcow2 depth-5 --backing-chain" --backing-chain chain5.qcow2
row "vmdk twoGbMaxExtentSparse 10G" split.vmdk
echo "(median of $RUNS runs; ratio = instar / qemu-img; hyperfine exports in $OUT)"
