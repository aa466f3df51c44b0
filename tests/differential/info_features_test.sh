#!/bin/bash
# Differential test: `instar info` against `qemu-img info` on damaged bitmap directories,
# LUKS headers and vmdk descriptors (crafted bytes in images qemu-img made): same output or
# same refusal, same warnings, same exit code.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/differential/info_helpers.sh"
cd "$WORK" || exit 1

# variant BASE NAME OFFSET FORMAT VALUE...: BASE with fields overwritten, compared as NAME.
variant() {
  local base="$1" name="$2"
  shift 2
  cp "$base" "$name"
  while [ $# -gt 0 ]; do
    patch_field "$name" "$1" "$2" "$3"
    shift 3
  done
  compare_with_qemu info "$name"
}

# Bitmaps: the extension at E (count, reserved, directory size, directory offset), the
# directory at D (table offset, table size, flags, type, granularity, name size, extra size).
qemu-img create -q -f qcow2 bm.qcow2 64M
qemu-img bitmap --add bm.qcow2 first
qemu-img bitmap --add -g 1M bm.qcow2 second
E=$(ext_data bm.qcow2 0x23852875)
D=$(be_at bm.qcow2 $((E + 16)) '>Q')
compare_info bm.qcow2
variant bm.qcow2 bm-in-use.qcow2 $((D + 12)) '>I' 3
compare_with_qemu info --output=json bm-in-use.qcow2
variant bm.qcow2 bm-stale.qcow2 88 '>Q' 0
variant bm.qcow2 bm-reserved.qcow2 $((E + 4)) '>I' 1
variant bm.qcow2 bm-zero.qcow2 $E '>I' 0
variant bm.qcow2 bm-too-many.qcow2 $E '>I' 70000
variant bm.qcow2 bm-dir-unaligned.qcow2 $((E + 16)) '>Q' $((D + 64))
variant bm.qcow2 bm-dir-huge.qcow2 $((E + 8)) '>Q' 0x100000000
variant bm.qcow2 bm-dir-far.qcow2 $((E + 16)) '>Q' 0xD900000000080000
variant bm.qcow2 bm-broken.qcow2 $((E + 8)) '>Q' 8
variant bm.qcow2 bm-fewer.qcow2 $E '>I' 3
variant bm.qcow2 bm-more.qcow2 $E '>I' 1
variant bm.qcow2 bm-granularity.qcow2 $((D + 17)) B 8
variant bm.qcow2 bm-type.qcow2 $((D + 16)) B 2
variant bm.qcow2 bm-flags.qcow2 $((D + 12)) '>I' 4
variant bm.qcow2 bm-table.qcow2 $D '>Q' 5

# Snapshot fields qemu-img never writes itself: a long VM clock, a VM state, no icount.
qemu-img create -q -f qcow2 snap.qcow2 16M
qemu-img snapshot -c one snap.qcow2
T=$(be_at snap.qcow2 64 '>Q')
variant snap.qcow2 snap-fields.qcow2 $((T + 16)) '>I' 0 $((T + 24)) '>Q' 1440000456789012 \
  $((T + 40)) '>Q' 123456789 $((T + 56)) '>Q' 0xffffffffffffffff
compare_with_qemu info --output=json snap-fields.qcow2

# LUKS: the extension at C (header offset, length), the header at L.
qemu-img create -q --object secret,id=s0,data=pw -f qcow2 \
  -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 luks.qcow2 16M
C=$(ext_data luks.qcow2 0x0537BE77)
L=$(be_at luks.qcow2 $C '>Q')
S=$((L + 208))
variant luks.qcow2 luks-ext-size.qcow2 $((C - 4)) '>I' 8
variant luks.qcow2 luks-unaligned.qcow2 $C '>Q' $((L + 1))
variant luks.qcow2 luks-at-zero.qcow2 $C '>Q' 0
variant luks.qcow2 luks-short.qcow2 $((C + 8)) '>Q' 100
variant luks.qcow2 luks-far.qcow2 $C '>Q' 0x7fffffffffff0000
variant luks.qcow2 luks-version.qcow2 $((L + 7)) B 2
variant luks.qcow2 luks-payload.qcow2 $((L + 104)) '>I' 4
variant luks.qcow2 luks-slot-state.qcow2 $((S + 48 * 2)) '>I' 5
variant luks.qcow2 luks-stripes.qcow2 $((S + 48 + 44)) '>I' 3999
variant luks.qcow2 luks-slot-header.qcow2 $((S + 40)) '>I' 1
variant luks.qcow2 luks-slots-overlap.qcow2 $((S + 48 * 3 + 40)) '>I' 1000
variant luks.qcow2 luks-mode-format.qcow2 $((L + 40)) '>I' 0x78747300
variant luks.qcow2 luks-mode.qcow2 $((L + 40)) B 0x79
variant luks.qcow2 luks-ivgen.qcow2 $((L + 44)) B 0x71
variant luks.qcow2 luks-cipher.qcow2 $((L + 8)) B 0x78
variant luks.qcow2 luks-key-size.qcow2 $((L + 108)) '>I' 7
variant luks.qcow2 luks-hash.qcow2 $((L + 72)) B 0x79

# vmdk descriptors, read the way qemu reads them.
truncate -s 1M flat.raw
descriptor() {
  printf '%b' "$2" > "$1.vmdk"
  compare_info "$1.vmdk"
}
head='# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
descriptor plain "$head"'RW 2048 FLAT "flat.raw" 0\n'
descriptor blank-line-twice "$head"'\nRW 2048 FLAT "flat.raw" 0\n'
descriptor split-line "$head"'RW\n2048 FLAT "flat.raw" 0\n'
descriptor skipped-lines "$head"'RDONLY 5 FLAT "flat.raw" 0\nRW x FLAT "a" 0\nRW 5 ZERO "a"\nRW 2048 FLAT "flat.raw" 0\n'
descriptor flat-without-offset "$head"'RW 2048 FLAT "flat.raw"\n'
descriptor vmfs-with-offset "$head"'RW 2048 VMFS "flat.raw" 3\n'
descriptor no-signature 'version=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "flat.raw" 0\n'
descriptor no-version '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "flat.raw" 0\n'
descriptor cid-in-parent '# Disk DescriptorFile\nversion=1\nparentCID=  12ab\ncreateType="monolithicFlat"\nRW 2048 FLAT "flat.raw" 0\n'
descriptor bad-parent-cid '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=zz\ncreateType="monolithicFlat"\nRW 2048 FLAT "flat.raw" 0\n'
descriptor open-hint "$head"'parentFileNameHint="base.vmdk\nRW 2048 FLAT "flat.raw" 0\n'
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 3G
descriptor sparse-not-sparse "$head"'RW 2048 SPARSE "flat.raw"\n'
patch_field split-s001.vmdk 44 '<I' 513
compare_with_qemu info split.vmdk
: > empty.vmdk
compare_with_qemu info -f vmdk empty.vmdk
qemu-img create -q -f vmdk sparse.vmdk 1M
python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); i=d.find(b"parentCID=ffffffff"); d[i+10:i+18]=b"  0x12ab"; open(p,"wb").write(d)' sparse.vmdk
compare_info sparse.vmdk
finish
