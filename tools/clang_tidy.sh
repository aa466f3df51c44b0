#!/bin/bash
# Runs clang-tidy with the checked-in .clang-tidy over the host code (vmm/, tools/; tests and
# guest code excluded) and prints the findings per check, most frequent first. Not part of
# tools/test yet: the host code is not clean (see the hardening notes). Slow: ~6 CPU-minutes.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v clang-tidy >/dev/null || { echo "clang-tidy is not installed" >&2; exit 1; }
mapfile -t files < <(ls vmm/*/*.cc tools/*/*.cc | grep -v '_test\.cc$')
clang-tidy -quiet "${files[@]}" -- -std=c++20 -I. 2>/dev/null | tee /tmp/clang-tidy.$$.log |
  grep -E '(warning|error):' | sed 's/.*\[\(.*\)\]$/\1/' | sort | uniq -c | sort -rn
echo "full output: /tmp/clang-tidy.$$.log"
