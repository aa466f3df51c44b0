#!/bin/bash
# What instar refuses on purpose, and hostile images: each is refused with its message, exit
# code 1, and the file is left byte for byte untouched.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1

# refused FILE EXPECTED-MESSAGE ARGS...: instar resize ARGS fails with the message and
# leaves FILE unchanged.
refused() {
  local file="$1" message="$2"
  shift 2
  CHECKS=$((CHECKS + 1))
  cp "$file" before
  local out rc
  out=$("$INSTAR" resize "$@" 2>&1)
  rc=$?
  [ "$rc" = 1 ] || fail "$*: exit code $rc"
  [[ "$out" == *"$message"* ]] || fail "$*: got '$out', wanted '$message'"
  cmp -s before "$file" || fail "$*: the image changed"
}

poke() {  # FILE OFFSET HEX-BYTES: writes bytes at OFFSET
  printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

qemu-img create -q -f qcow2 -o cluster_size=65536 good.qcow2 4G
qemu-io -c "write -P 1 0 64k" -c "write -P 2 3G 64k" good.qcow2 >/dev/null

# L1 entry for 3 GiB (index 6) pointing far past the end of the file: shrinking reads it.
cp good.qcow2 l1.qcow2
poke l1.qcow2 $((0x30000 + 6 * 8)) '\x80\x00\x00\x10\x00\x00\x00\x00'
refused l1.qcow2 "bad L1 table or entry" --shrink l1.qcow2 1G

# An L2 entry pointing into the middle of a cluster.
cp good.qcow2 l2.qcow2
l2=$(od -An -t u8 --endian=big -j $((0x30000 + 6 * 8)) -N 8 l2.qcow2 | tr -d ' ')
l2=$(( l2 & 0x00fffffffffffe00 ))
poke l2.qcow2 "$l2" '\x80\x00\x00\x00\x00\x05\x02\x00'
refused l2.qcow2 "bad L2 entry" --shrink l2.qcow2 1G

# Refcount table outside the file.
cp good.qcow2 rt.qcow2
poke rt.qcow2 48 '\x00\x00\x01\x00\x00\x00\x00\x00'
refused rt.qcow2 "bad refcount table" rt.qcow2 8G

# L1 table too small for the virtual size: qemu refuses it at open, with its message.
cp good.qcow2 small.qcow2
poke small.qcow2 36 '\x00\x00\x00\x01'
refused small.qcow2 "Could not open 'small.qcow2': L1 table is too small" small.qcow2 8G

# A refcount of zero for the L1 table's own cluster: found before anything is written.
cp good.qcow2 zero.qcow2
rb=$(od -An -t u8 --endian=big -j 65536 -N 8 zero.qcow2 | tr -d ' ')
poke zero.qcow2 $(( rb + 2 * 3 )) '\x00\x00'
refused zero.qcow2 "refcount of cluster 3" zero.qcow2 16T

# An external data file (qemu-img would resize it too): image and data file untouched.
qemu-img create -q -f qcow2 -o data_file=ext.raw,data_file_raw=on ext.qcow2 64M
qemu-io -c "write -P 3 0 1M" ext.qcow2 >/dev/null
cp ext.raw ext.raw.before
refused ext.qcow2 "with an external data file" ext.qcow2 128M
cmp -s ext.raw ext.raw.before || fail "the data file changed"

# Growing over a longer backing file from an old end inside a cluster (qemu-img copies the
# backing file's data into that cluster; instar has only the image attached).
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 short.qcow2 33555968
refused short.qcow2 "over its larger backing file" short.qcow2 40M
# A backing file outside the allowed directories is not followed (--allow-dir admits it).
mkdir sub
qemu-img create -q -f qcow2 -b ../base.qcow2 -F qcow2 sub/up.qcow2 64M
refused sub/up.qcow2 "outside the allowed directories" sub/up.qcow2 +1M
CHECKS=$((CHECKS + 1))
[ "$("$INSTAR" resize --allow-dir . sub/up.qcow2 +1M 2>&1)" = "Image resized." ] ||
  fail "--allow-dir did not admit the backing file"
finish
