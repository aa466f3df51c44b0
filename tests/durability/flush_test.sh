#!/bin/bash
# Durability: every writing command syncs the image exactly when qemu-img does (qemu's cache
# mode `unsafe` skips flushes, every other mode keeps them), and a write that makes earlier
# writes reachable comes after a sync: the header of a grow that relocates the L1 table is
# written only after the new table has been synced. Observed with strace on the real CLI.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1

syncs() {  # PROGRAM ARGS...: how many fdatasync/fsync calls the command made
  strace -f -qq -e trace=fdatasync,fsync -o trace "$@" >/dev/null 2>&1
  grep -c 'sync(' trace
}

fresh() {  # a base with data and an overlay with one written MiB
  rm -f base.qcow2 top.qcow2
  qemu-img create -q -f qcow2 base.qcow2 64M
  qemu-io -c "write -P 1 0 4M" base.qcow2 >/dev/null
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
  qemu-io -c "write -P 2 1M 1M" top.qcow2 >/dev/null
}

# same_sync_behaviour ARGS...: instar syncs (or not) as qemu-img does, on fresh copies.
same_sync_behaviour() {
  local sandbox q i
  fresh
  q=$(syncs qemu-img "$@")
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    fresh
    i=$(INSTAR_SANDBOX="$sandbox" syncs "$INSTAR" "$@")
    if [ "$q" = 0 ] && [ "$i" != 0 ]; then fail "($sandbox) $*: instar synced $i times, qemu-img never"; fi
    if [ "$q" != 0 ] && [ "$i" = 0 ]; then fail "($sandbox) $*: qemu-img synced $q times, instar never"; fi
  done
}

same_sync_behaviour commit top.qcow2
same_sync_behaviour commit -t writeback top.qcow2
same_sync_behaviour commit -t unsafe top.qcow2
same_sync_behaviour rebase -u -b base.qcow2 -F qcow2 top.qcow2
same_sync_behaviour rebase -b "" top.qcow2
same_sync_behaviour rebase -t unsafe -b "" top.qcow2
same_sync_behaviour resize top.qcow2 +1G
same_sync_behaviour resize --shrink top.qcow2 32M

# A grow from 1 GiB to 1 TiB with 64 KiB clusters needs a new L1 table: the header (offset 0)
# must be written after a sync that follows the table's write.
for sandbox in $SANDBOXES; do
  CHECKS=$((CHECKS + 1))
  rm -f grow.qcow2
  qemu-img create -q -f qcow2 grow.qcow2 1G
  INSTAR_SANDBOX="$sandbox" strace -f -qq -e trace=pwrite64,fdatasync,fsync -o trace \
    "$INSTAR" resize grow.qcow2 1T >/dev/null 2>&1
  # Last header write, and whether a sync lies between it and the write before it.
  if ! awk '
      /sync\(/ { synced = 1; next }
      /pwrite64\(/ {
        n = split($0, f, ", "); off = f[n]; sub(/\).*/, "", off)
        if (off + 0 < 512) { header_synced = synced; seen = 1 } else { synced = 0 }
      }
      END { exit !(seen && header_synced) }' trace; then
    fail "($sandbox) resize 1G -> 1T: header written without a sync after the new L1 table"
  fi
  qemu-img check -q grow.qcow2 || fail "($sandbox) resize 1G -> 1T: image not clean"
done

finish
