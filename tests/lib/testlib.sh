# Shared helpers for shell tests run by `bazel test` (sourced, not executed).
# Gives: $INSTAR (the CLI binary), a fresh $WORK directory, check/finish bookkeeping, and
# compare_with_qemu, which runs one qemu-img command and the same instar command in every
# sandbox ($SANDBOXES: kvm and process where /dev/kvm is usable, else process) and compares
# stdout byte for byte, stderr with the program name normalised, and the exit code.
set -u

INSTAR="${INSTAR:-${TEST_SRCDIR:-}/${TEST_WORKSPACE:-instar}/tools/cli/instar}"
WORK="$(mktemp -d "${TEST_TMPDIR:-/tmp}/instar-test.XXXXXX")"
CHECKS=0
FAILURES=0
if [ -z "${SANDBOXES:-}" ]; then
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then SANDBOXES="kvm process"; else SANDBOXES="process"; fi
fi

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

# check NAME COMMAND...: runs COMMAND; a non-zero exit is a failure.
check() {
  local name="$1"
  shift
  CHECKS=$((CHECKS + 1))
  if ! "$@"; then fail "$name"; fi
}

# compare_with_qemu [--stdout-only] SUBCOMMAND ARGS...: qemu-img vs instar, run in $PWD.
compare_with_qemu() {
  local stdout_only=0
  if [ "$1" = "--stdout-only" ]; then stdout_only=1; shift; fi
  local q="$WORK/.q" i="$WORK/.i" sandbox
  qemu-img "$@" >"$q.out" 2>"$q.err"
  local qrc=$?
  sed -i 's/^qemu-img: /PROG: /; s/Try .qemu-img --help./Try PROG --help/' "$q.err"
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    INSTAR_SANDBOX="$sandbox" "$INSTAR" "$@" >"$i.out" 2>"$i.err"
    local irc=$?
    sed -i 's/^instar: /PROG: /; s/Try .instar --help./Try PROG --help/' "$i.err"
    local ok=1
    if [ "$qrc" != "$irc" ]; then
      echo "MISMATCH ($sandbox) exit code for '$*': qemu-img $qrc, instar $irc" >&2
      ok=0
    fi
    if ! cmp -s "$q.out" "$i.out"; then
      echo "MISMATCH ($sandbox) stdout for '$*':" >&2
      diff -u "$q.out" "$i.out" | sed 's/^/    /' >&2
      ok=0
    fi
    if [ "$stdout_only" = 0 ] && ! cmp -s "$q.err" "$i.err"; then
      echo "MISMATCH ($sandbox) stderr for '$*':" >&2
      diff -u "$q.err" "$i.err" | sed 's/^/    /' >&2
      ok=0
    fi
    [ "$ok" = 1 ] || fail "($sandbox) qemu-img $*"
  done
}

# finish: prints the tally and exits non-zero on any failure.
finish() {
  rm -rf "$WORK"
  echo "$((CHECKS - FAILURES)) of $CHECKS checks passed"
  [ "$FAILURES" = 0 ]
  exit $?
}
