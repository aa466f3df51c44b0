#!/bin/bash
# Runs every operation (info, check, check -r all, resize, rebase -u, safe rebase, commit) on
# every image of the hostile corpus (make_hostile_images.py) in every sandbox; writing
# operations get a fresh copy. Each run must end within its deadline with either success or a
# clear error: an exit code the command documents and, on failure, a stderr line starting
# "instar: " (qemu's warnings and check's findings may come first; check's exit codes 2 and 3
# report findings without one). No run may change any file other than the copy it was given.
# With HOSTILE_COMPARE=1 it also prints every exit code that differs from qemu-img's
# (information, not a pass criterion: parity is asserted by tests/differential).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
GENERATOR="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/hostile/make_hostile_images.py"

CORPUS="$WORK/corpus"
SCRATCH="$WORK/scratch"
mkdir -p "$SCRATCH"
IMAGES=$(python3 "$GENERATOR" "$CORPUS") || { echo "generator failed" >&2; exit 1; }
echo "corpus: $IMAGES images"

fingerprint() { (cd "$CORPUS" && sha256sum -- * && sha256sum /etc/passwd); }
fingerprint >"$WORK/before"

# Keeps a runaway guest short; the host watchdog enforces it.
export INSTAR_DEADLINE_MS=5000
RUNS=0
AGREE=0

# run_one SANDBOX IMAGE WRITES OPERATION ARGS...: the image (or, when WRITES is 1, a fresh
# copy of it) is the last argument.
run_one() {
  local sandbox="$1" image="$2" writes="$3" operation="$4"
  shift 4
  local target="$CORPUS/$image"
  if [ "$writes" = 1 ]; then
    rm -rf "$SCRATCH"/*
    cp -- "$CORPUS/$image" "$SCRATCH/$image"
    target="$SCRATCH/$image"
  fi
  CHECKS=$((CHECKS + 1))
  RUNS=$((RUNS + 1))
  INSTAR_SANDBOX="$sandbox" timeout 30 "$INSTAR" "$operation" "$@" "$target" \
    >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  local what="($sandbox) $operation $* $image"
  if [ "$rc" = 124 ] || [ "$rc" -ge 128 ]; then
    fail "$what: exit $rc (timeout or signal)"
    return
  fi
  local allowed="0 1"
  [ "$operation" = check ] && allowed="0 1 2 3 63"
  case " $allowed " in
    *" $rc "*) ;;
    *) fail "$what: exit code $rc"; return ;;
  esac
  if [ "$rc" = 1 ] || { [ "$rc" = 63 ] && [ "$operation" = check ]; }; then
    if ! grep -q '^instar: .' "$WORK/err"; then
      fail "$what: exit $rc without a clear error: $(head -c 300 "$WORK/err")"
      return
    fi
  fi
  if [ "${HOSTILE_COMPARE:-0}" = 1 ] && [ "$sandbox" = "${SANDBOXES%% *}" ]; then
    local qtarget="$CORPUS/$image"
    if [ "$writes" = 1 ]; then
      cp -- "$CORPUS/$image" "$SCRATCH/q-$image"
      qtarget="$SCRATCH/q-$image"
    fi
    timeout 10 qemu-img "$operation" "$@" "$qtarget" >/dev/null 2>&1
    local qrc=$?
    if [ "$qrc" = "$rc" ]; then AGREE=$((AGREE + 1)); else echo "exit differs: $what: qemu-img $qrc, instar $rc"; fi
  fi
}

for sandbox in $SANDBOXES; do
  for path in "$CORPUS"/*; do
    image="$(basename "$path")"
    [ "$image" = flat.bin ] && continue
    run_one "$sandbox" "$image" 0 info
    run_one "$sandbox" "$image" 0 info --output=json
    run_one "$sandbox" "$image" 0 check
    run_one "$sandbox" "$image" 1 check -r all
    run_one "$sandbox" "$image" 1 resize "+1M"
    run_one "$sandbox" "$image" 1 rebase -u -b ""
    run_one "$sandbox" "$image" 1 rebase -b ""
    run_one "$sandbox" "$image" 1 commit
  done
done

fingerprint >"$WORK/after"
CHECKS=$((CHECKS + 1))
if ! cmp -s "$WORK/before" "$WORK/after"; then
  fail "files outside the written copies changed:"
  diff "$WORK/before" "$WORK/after" >&2
fi

echo "runs: $RUNS"
if [ "${HOSTILE_COMPARE:-0}" = 1 ]; then
  echo "exit code equal to qemu-img's in $AGREE of $((RUNS / $(echo $SANDBOXES | wc -w))) (${SANDBOXES%% *})"
fi
finish
