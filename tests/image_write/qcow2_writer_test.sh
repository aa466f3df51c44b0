#!/bin/bash
# Qcow2Writer and VmdkWriter against qemu-img: images made by qemu-img and qemu-io (cluster
# sizes 512 B..2 MiB, refcount widths 1..64, versions 2 and 3, internal snapshots, existing
# allocations, zero clusters; monolithicSparse VMDK with and without zeroed-grain entries and
# with grain tables missing) get a seeded random sequence of write / zero / discard requests
# through the writer; the same sequence goes to a raw copy. Afterwards `qemu-img check` finds
# nothing, `qemu-img compare` finds the image equal to the raw copy, and every internal
# snapshot reads exactly as before.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
TOOL="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/image_write/image_write_tool"
cd "$WORK" || exit 1

# prepare_qcow2 OPTIONS SIZE: a.qcow2 with data, a zeroed range, and (when the refcount width
# allows a shared cluster) a snapshot s1 taken before more data.
prepare_qcow2() {
  rm -f a.qcow2 snap.before
  qemu-img create -q -f qcow2 -o "$1" a.qcow2 "$2"
  qemu-io -c "write -P 1 0 300k" -c "write -P 2 5M 1M" -c "write -z 2M 100k" a.qcow2 >/dev/null
  if [[ "$1" != *refcount_bits=1* ]]; then
    qemu-img snapshot -c s1 a.qcow2
    qemu-img convert -l s1 -O raw a.qcow2 snap.before
  fi
  qemu-io -c "write -P 3 200k 400k" -c "write -P 4 7M 64k" a.qcow2 >/dev/null
  qemu-img convert -O raw a.qcow2 ref.raw
}

# writes_match NAME FORMAT IMAGE TOOL-ARGS...: runs the tool, then checks the image.
writes_match() {
  local name="$1" format="$2" image="$3"
  shift 3
  CHECKS=$((CHECKS + 1))
  local out
  if ! out=$("$TOOL" run --format "$format" --image "$image" --reference ref.raw "$@" 2>&1); then
    fail "$name: tool: $out"
    return
  fi
  local check
  check=$(qemu-img check -f "$format" "$image" 2>&1) || fail "$name: check: $check"
  qemu-img compare -q -f "$format" -F raw "$image" ref.raw || fail "$name: content differs"
  if [ -f snap.before ]; then
    qemu-img snapshot -l "$image" | grep -q ' s1 ' || fail "$name: snapshot gone"
    qemu-img convert -l s1 -O raw "$image" snap.after
    # After a grow the snapshot reads with the image's new size: the tail must be zeros.
    qemu-img compare -q -f raw -F raw snap.before snap.after || fail "$name: snapshot changed"
  fi
}

seed=1
for cluster in 512 4096 65536 2097152; do
  for bits in 1 2 16 64; do
    for compat in 0.10 1.1; do
      [ "$compat" = 0.10 ] && [ "$bits" != 16 ] && continue  # v2 has 16-bit refcounts only
      opts="compat=$compat,cluster_size=$cluster,refcount_bits=$bits"
      prepare_qcow2 "$opts" 16M
      writes_match "$opts" qcow2 a.qcow2 --seed $seed --ops 40
      seed=$((seed + 1))
      # Small caches and free list: flushes forced in the middle of requests.
      prepare_qcow2 "$opts" 16M
      writes_match "$opts small caches" qcow2 a.qcow2 --seed $seed --ops 40 \
        --cache-bytes 1 --pending-frees 2
      seed=$((seed + 1))
    done
  done
done

# An unaligned virtual size (the last cluster is partly past the end).
prepare_qcow2 cluster_size=65536 10000000
writes_match "unaligned size" qcow2 a.qcow2 --seed 90 --ops 60

# The refcount table outgrows its cluster and moves, more than once.
prepare_qcow2 cluster_size=512,refcount_bits=64 16M
writes_match "refcount table moves" qcow2 a.qcow2 --seed 91 --ops 80 --flush-every 7

# Grow first (commit into a smaller base), with and without zeroing the new range.
prepare_qcow2 cluster_size=65536 16M
writes_match "grow" qcow2 a.qcow2 --seed 92 --ops 40 --grow 40000512
prepare_qcow2 cluster_size=4096 16M
writes_match "grow, zeroed" qcow2 a.qcow2 --seed 93 --ops 40 --grow 3000000512 --zero-grow
prepare_qcow2 compat=0.10,cluster_size=512 10000000
writes_match "grow v2, zeroed" qcow2 a.qcow2 --seed 94 --ops 40 --grow 20000256 --zero-grow

# Compressed clusters are replaced, never written in place.
rm -f snap.before
qemu-img create -q -f qcow2 plain.qcow2 16M
qemu-io -c "write -P 9 0 8M" plain.qcow2 >/dev/null
qemu-img convert -c -O qcow2 plain.qcow2 a.qcow2
qemu-img convert -O raw a.qcow2 ref.raw
writes_match "compressed" qcow2 a.qcow2 --seed 95 --ops 60

# VMDK: with and without zeroed-grain entries, and with grain tables missing (directory
# entries 0: the writer creates tables for both directories).
for opts in "" "zeroed_grain=on"; do
  rm -f a.vmdk snap.before
  qemu-img create -q -f vmdk ${opts:+-o "$opts"} a.vmdk 100M
  qemu-io -f vmdk -c "write -P 1 0 300k" -c "write -P 2 50M 1M" a.vmdk >/dev/null
  qemu-img convert -f vmdk -O raw a.vmdk ref.raw
  writes_match "vmdk $opts" vmdk a.vmdk --seed 96 --ops 60
  writes_match "vmdk $opts again" vmdk a.vmdk --seed 97 --ops 60 --cache-bytes 1
done
rm -f a.vmdk
qemu-img create -q -f vmdk a.vmdk 200M
gd=$(od -An -t u8 -j 56 -N 8 a.vmdk | tr -d ' ')
rgd=$(od -An -t u8 -j 48 -N 8 a.vmdk | tr -d ' ')
# Directory entries 1.. of both directories become 0 (their tables are empty: same content).
dd if=/dev/zero of=a.vmdk bs=1 seek=$((gd * 512 + 4)) count=400 conv=notrunc 2>/dev/null
dd if=/dev/zero of=a.vmdk bs=1 seek=$((rgd * 512 + 4)) count=400 conv=notrunc 2>/dev/null
qemu-img convert -f vmdk -O raw a.vmdk ref.raw
writes_match "vmdk new tables" vmdk a.vmdk --seed 98 --ops 60
writes_match "vmdk grow" vmdk a.vmdk --seed 99 --ops 40 --grow 3000000512

# refused NAME FORMAT IMAGE CODE: opening (or the first request) fails with WriteError CODE.
refused() {
  CHECKS=$((CHECKS + 1))
  cp "$3" before
  local out
  out=$("$TOOL" run --format "$2" --image "$3" --reference ref.raw --seed 1 --ops 5 2>&1)
  [ $? = 1 ] || fail "$1: not refused: $out"
  [[ "$out" == *"error $4 "* ]] || fail "$1: got '$out', wanted error $4"
}
qemu-img create -q -f qcow2 -o extended_l2=on a.qcow2 16M
qemu-img convert -O raw a.qcow2 ref.raw
refused "extended L2" qcow2 a.qcow2 7
cmp -s before a.qcow2 || fail "extended L2: image changed"
qemu-img create -q -f vmdk -o subformat=streamOptimized a.vmdk 16M
refused "streamOptimized" vmdk a.vmdk 18
cmp -s before a.vmdk || fail "streamOptimized: image changed"
# L1 entries pointing past the end of the file (both entries of a 1 GiB image).
qemu-img create -q -f qcow2 -o cluster_size=65536 a.qcow2 1G
truncate -s 1G ref.raw
for i in 0 1; do
  printf '\x80\x00\x00\x10\x00\x00\x00\x00' |
    dd of=a.qcow2 bs=1 seek=$((0x30000 + 8 * i)) conv=notrunc 2>/dev/null
done
refused "L1 past the end" qcow2 a.qcow2 8
cmp -s before a.qcow2 || fail "L1 past the end: image changed"
# An L2 entry pointing into the middle of a cluster.
qemu-img create -q -f qcow2 -o cluster_size=65536 a.qcow2 64M
qemu-io -c "write -P 1 0 64M" a.qcow2 >/dev/null
qemu-img convert -O raw a.qcow2 ref.raw
l2=$(od -An -t u8 --endian=big -j $((0x30000)) -N 8 a.qcow2 | tr -d ' ')
l2=$(( l2 & 0x00fffffffffffe00 ))
for i in $(seq 0 1023); do
  printf '\x80\x00\x00\x00\x00\x05\x02\x00' | dd of=a.qcow2 bs=1 seek=$((l2 + 8 * i)) conv=notrunc 2>/dev/null
done
refused "L2 entry unaligned" qcow2 a.qcow2 9

echo "$CHECKS checks, $FAILURES failures"
[ "$FAILURES" = 0 ]
