#!/bin/bash
# Crash consistency of the image writers: a request sequence is cut after every single step
# it emits (K = 0, 1, 2, ... until it completes). Every cut image must be one `qemu-img check`
# calls clean or leaking only, every guest cluster must hold one of the contents it had
# during the sequence (its old one, or one a request gave it), and snapshots never change.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
TOOL="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/image_write/image_write_tool"
cd "$WORK" || exit 1

# sweep NAME FORMAT ORIGINAL TOOL-ARGS...
sweep() {
  local name="$1" format="$2" original="$3"
  shift 3
  qemu-img convert -f "$format" -O raw "$original" initial.raw
  local snap=0
  if [ "$format" = qcow2 ] && qemu-img snapshot -l "$original" | grep -q ' s1 '; then
    snap=1
    qemu-img convert -l s1 -O raw "$original" snap.before
  fi
  cp "$original" full.img
  cp initial.raw ref.raw
  local out
  if ! out=$("$TOOL" run --format "$format" --image full.img --reference ref.raw \
               --history history "$@" 2>&1); then
    fail "$name: full run: $out"
    return
  fi
  local steps=${out#steps=}
  steps=${steps%% *}
  for ((k = 0; k < steps; k++)); do
    CHECKS=$((CHECKS + 1))
    cp "$original" cut.img
    cp initial.raw scratch.raw
    "$TOOL" run --format "$format" --image cut.img --reference scratch.raw --max-steps "$k" \
      "$@" >/dev/null 2>&1
    local rc=$?
    [ "$rc" = 2 ] || { fail "$name: cut at $k: tool exit $rc"; continue; }
    qemu-img check -q -f "$format" cut.img >/dev/null 2>&1
    rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "$name: cut at $k: check exit $rc"
    qemu-img convert -f "$format" -O raw cut.img cut.raw
    "$TOOL" verify --history history --raw cut.raw || fail "$name: cut at $k: content"
    if [ "$snap" = 1 ]; then
      qemu-img convert -l s1 -O raw cut.img snap.after
      qemu-img compare -q -f raw -F raw snap.before snap.after || fail "$name: cut at $k: snapshot"
    fi
  done
  echo "$name: $steps steps swept"
}

# qcow2 v3, 512-byte clusters, 64-bit refcounts: the refcount table moves; a snapshot shares
# clusters and L2 tables; small caches force flushes inside requests.
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 a.qcow2 4M
qemu-io -c "write -P 1 0 300k" -c "write -z 1M 100k" a.qcow2 >/dev/null
qemu-img snapshot -c s1 a.qcow2
qemu-io -c "write -P 3 200k 100k" a.qcow2 >/dev/null
sweep "v3 512 B" qcow2 a.qcow2 --seed 11 --ops 12 --cache-bytes 1 --pending-frees 3

# qcow2 v2, 64 KiB clusters, a snapshot, zeroing writes zeros.
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=65536 b.qcow2 32M
qemu-io -c "write -P 1 0 3M" -c "write -P 2 20M 1M" b.qcow2 >/dev/null
qemu-img snapshot -c s1 b.qcow2
sweep "v2 64 KiB" qcow2 b.qcow2 --seed 12 --ops 16

# Grow with the new range zeroed, then requests.
qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=2 c.qcow2 1000000
qemu-io -c "write -P 1 0 300k" -c "write -P 5 999424 1024" c.qcow2 >/dev/null
sweep "grow" qcow2 c.qcow2 --seed 13 --ops 8 --grow 9000448 --zero-grow

# VMDK with grain tables missing.
qemu-img create -q -f vmdk d.vmdk 200M
gd=$(od -An -t u8 -j 56 -N 8 d.vmdk | tr -d ' ')
rgd=$(od -An -t u8 -j 48 -N 8 d.vmdk | tr -d ' ')
dd if=/dev/zero of=d.vmdk bs=1 seek=$((gd * 512 + 4)) count=400 conv=notrunc 2>/dev/null
dd if=/dev/zero of=d.vmdk bs=1 seek=$((rgd * 512 + 4)) count=400 conv=notrunc 2>/dev/null
qemu-io -f vmdk -c "write -P 1 0 300k" d.vmdk >/dev/null
sweep "vmdk" vmdk d.vmdk --seed 14 --ops 12 --cache-bytes 1

echo "$CHECKS checks, $FAILURES failures"
[ "$FAILURES" = 0 ]
