#!/bin/bash
# Daemon benchmark: starts instard on a temporary socket, measures info latency and
# throughput with 1 and 8 clients beside qemu-img info, stops the daemon.
# Usage: bench/run_daemon_bench.sh [REQUESTS_PER_CLIENT] [MAX_CONCURRENT]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools/setup
bazel build --noshow_progress //tools/daemon:instard //bench:daemon_bench 2>/dev/null
work="$(mktemp -d)"
qemu-img create -q -f qcow2 "$work/bench.qcow2" 64M
bazel-bin/tools/daemon/instard --socket "$work/sock" --max-concurrent "${2:-2}" 2>"$work/log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.05; done
bazel-bin/bench/daemon_bench "$work/sock" "$work/bench.qcow2" "${1:-100}"
