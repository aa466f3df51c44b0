#!/bin/bash
# Runs clang-tidy with the checked-in .clang-tidy over the host code (every C++ source under
# vmm/, tools/cli/ and tools/daemon/ that Bazel compiles for the host, tests excepted; the
# fuzz targets' corpus-replay main is test tooling), with the exact flags
# Bazel compiles each file with (from `bazel aquery`), after building those targets so the
# generated headers exist. Prints each finding and a count per check; exits non-zero when
# there is any finding or clang-tidy fails. tools/test runs it as one counted test.
# Usage: tools/clang_tidy.sh [bazel startup options...]   (e.g. --output_base=DIR)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v clang-tidy >/dev/null || { echo "clang-tidy is not installed" >&2; exit 1; }
bazel=(bazel "$@")
targets=(//vmm/... //tools/...)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"${bazel[@]}" build --jobs=2 --noshow_progress "${targets[@]}" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; echo "clang-tidy: the host targets do not build" >&2; exit 1; }
execroot="$("${bazel[@]}" info execution_root 2>/dev/null)"
"${bazel[@]}" aquery --output=jsonproto \
  "mnemonic('CppCompile', set(${targets[*]}))" >"$work/actions.json" 2>"$work/aquery.log" ||
  { cat "$work/aquery.log" >&2; exit 1; }

# compile_commands.json for the host sources: guest code (freestanding), tests and fuzzing
# tooling are left out. GCC-only options clang does not know are dropped.
python3 - "$work/actions.json" "$execroot" "$work/compile_commands.json" "$work/files" <<'EOF'
import json, re, sys
actions = json.load(open(sys.argv[1])).get("actions", [])
gcc_only = {"-fno-canonical-system-headers", "-Wno-free-nonheap-object",
            "-Wunused-but-set-parameter"}
commands, files = [], []
for a in actions:
    args = a["arguments"]
    if "-ffreestanding" in args or "-c" not in args:
        continue
    src = args[args.index("-c") + 1]
    if not re.match(r"(vmm|tools/cli|tools/daemon)/.*\.cc$", src) or re.search(r"_(test|fuzz)\.cc$", src):
        continue
    if src in files:
        continue
    args = [x for x in args if x not in gcc_only]
    commands.append({"directory": sys.argv[2], "file": src, "arguments": args})
    files.append(src)
json.dump(commands, open(sys.argv[3], "w"), indent=1)
open(sys.argv[4], "w").write("\n".join(sorted(files)) + "\n")
EOF
count=$(wc -l <"$work/files")
echo "clang-tidy: $count host sources" >&2

# Two at a time (the CI machine has two cores). The execroot holds the sources as symlinks
# into this checkout; findings are reported with checkout-relative paths.
log="$work/tidy.log"
(cd "$execroot" && xargs -a "$work/files" -P 2 -n 4 \
  clang-tidy --quiet -p "$work" --config-file="$root/.clang-tidy" \
  --extra-arg=-Wno-unknown-warning-option) >"$log" 2>&1
rc=$?
sed -e "s|$execroot/||g" -e "s|$root/||g" "$log" | grep -E '(warning|error):' | sort -u >"$work/findings"
findings=$(wc -l <"$work/findings")
if [ "$findings" -gt 0 ]; then
  cat "$work/findings"
  echo "per check:"
  sed -n 's/.*\[\([^]]*\)\]$/\1/p' "$work/findings" | sort | uniq -c | sort -rn
fi
echo "clang-tidy: $findings findings in $count files"
[ "$findings" = 0 ] && [ "$rc" = 0 ]
