#!/bin/bash
# Benchmark (not a test): wall time of `instar check` against `qemu-img check` on
#   1. a qcow2 with ~2 GiB allocated at 64 KiB clusters,
#   2. a qcow2 with ~2 GiB allocated at 512 B clusters (4M data clusters),
#   3. a 1 TiB-virtual qcow2 with 4 GiB allocated (64 KiB clusters),
#   4. a 64 TiB sparse qcow2.
# Clusters are allocated with preallocation=metadata (the check reads metadata, never data),
# so the files are sparse and quick to make. Prints the median of RUNS runs per tool and the
# instar/qemu-img ratio (after one warm-up run each, so both read from the page cache; the
# runs of the two tools alternate).
# Usage: bench/check_bench.sh [INSTAR] [RUNS]
set -eu
INSTAR="${1:-$(dirname "$0")/../bazel-bin/tools/cli/instar}"
RUNS="${2:-11}"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/check-bench.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT

seconds() {  # COMMAND...: wall time of one run (output discarded)
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

median() {  # VALUES...
  printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"
}

bench() {  # LABEL IMAGE
  local label="$1" image="$2"
  # Both tools must agree before their speed means anything.
  if ! diff <(qemu-img check "$image" 2>&1) <("$INSTAR" check "$image" 2>&1 | sed 's/^instar:/qemu-img:/') >/dev/null; then
    echo "$label: OUTPUTS DIFFER" >&2
  fi
  qemu-img check "$image" >/dev/null 2>&1 || true
  "$INSTAR" check "$image" >/dev/null 2>&1 || true
  # The runs alternate, so both tools see the same load on a shared machine.
  local qs=() is=() q i
  for _ in $(seq "$RUNS"); do
    qs+=("$(seconds qemu-img check "$image")")
    is+=("$(seconds "$INSTAR" check "$image")")
  done
  q=$(median "${qs[@]}")
  i=$(median "${is[@]}")
  printf '%-44s qemu-img %7.3f s   instar %7.3f s   ratio %5.2f\n' "$label" "$q" "$i" \
    "$(echo "$i / $q" | bc -l)"
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
qemu-img create -q -f qcow2 -o cluster_size=65536,preallocation=metadata "$DIR/a.qcow2" 2G
bench "2 GiB allocated, 64 KiB clusters" "$DIR/a.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=512,preallocation=metadata "$DIR/b.qcow2" 2G
bench "2 GiB allocated, 512 B clusters" "$DIR/b.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=65536,preallocation=metadata "$DIR/c.qcow2" 4G
qemu-img resize -q "$DIR/c.qcow2" 1T
bench "1 TiB virtual, 4 GiB allocated" "$DIR/c.qcow2"
qemu-img create -q -f qcow2 "$DIR/d.qcow2" 64T
qemu-io -c 'write 0 64k' -c 'write 63T 64k' "$DIR/d.qcow2" >/dev/null
bench "64 TiB sparse" "$DIR/d.qcow2"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
