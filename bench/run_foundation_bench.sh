#!/bin/bash
# Foundation benchmark: VM lifecycle timings and `instar info` vs `qemu-img info` on a fresh
# 64 MiB qcow2, one run, side by side. Usage: bench/run_foundation_bench.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools/setup
bazel build --noshow_progress //tools/cli:instar //bench:vm_lifecycle_bench 2>/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
qemu-img create -q -f qcow2 "$work/bench.qcow2" 64M
bazel-bin/bench/vm_lifecycle_bench "$root/bazel-bin/tools/cli/instar" "$work/bench.qcow2" "${1:-50}"
