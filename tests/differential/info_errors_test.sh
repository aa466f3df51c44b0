#!/bin/bash
# Differential test: `instar info` against `qemu-img info` on raw files, unusable files, bad
# command lines and malformed qcow2/vmdk headers (crafted bytes): same refusal, same message,
# same exit code.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/differential/info_helpers.sh"
cd "$WORK" || exit 1

qemu-img create -q -f qcow2 plain.qcow2 1M
qemu-img create -q -f raw sized.raw 1000000
printf 'abc' > tiny.raw
: > empty.raw
mkdir adir
for f in sized.raw tiny.raw empty.raw; do compare_info $f; done
compare_with_qemu info -f raw plain.qcow2
compare_with_qemu info -f qcow2 empty.raw
compare_with_qemu info -f vmdk plain.qcow2
compare_with_qemu info missing.qcow2
compare_with_qemu info adir
compare_with_qemu info
compare_with_qemu info a b
compare_with_qemu info --output=xml plain.qcow2
compare_with_qemu info --output json plain.qcow2
compare_with_qemu info -f nosuchformat plain.qcow2
compare_with_qemu info --bogus plain.qcow2
compare_with_qemu info -f

# Truncated files: qemu reads past the end as zeros.
for n in 50 72 104 200 1000; do
  head -c $n plain.qcow2 > trunc$n.qcow2
  compare_info trunc$n.qcow2
done

# crafted NAME OFFSET FORMAT VALUE...: plain.qcow2 with fields overwritten, compared.
crafted() {
  local name="$1"
  shift
  cp plain.qcow2 "$name.qcow2"
  while [ $# -gt 0 ]; do
    patch_field "$name.qcow2" "$1" "$2" "$3"
    shift 3
  done
  compare_with_qemu info "$name.qcow2"
}
crafted magic 0 '>I' 0x514649FA
crafted version4 4 '>I' 4
crafted version0 4 '>I' 0
crafted cluster-bits8 20 '>I' 8
crafted cluster-bits22 20 '>I' 22
crafted refcount-order7 96 '>I' 7
crafted header-short 100 '>I' 100
crafted header-long 100 '>I' 70000
crafted crypt3 32 '>I' 3
crafted crypto-ext-without-luks 112 '>I' 0x0537BE77 116 '>I' 16
crafted data-file-raw-alone 88 '>Q' 2   # qemu describes it (check and resize refuse it)
crafted unknown-incompat 72 '>Q' 0x20
crafted unknown-high 72 '>Q' 0x8000000000000000
# Feature name table entries renamed onto unknown bits: qemu names them.
crafted named-feature 0xd9 B 5 72 '>Q' 0x20
crafted named-and-unknown 0xd9 B 5 72 '>Q' 0x60
crafted two-named 0xd9 B 5 0x109 B 6 72 '>Q' 0x61
crafted compression-type2 100 '>I' 112 104 B 2
crafted zstd-without-bit 100 '>I' 112 104 B 1
crafted zlib-with-bit 72 '>Q' 8
crafted refcount-table-large 56 '>I' 129
crafted no-refcount-table 56 '>I' 0
crafted refcount-offset 48 '>Q' 7
crafted refcount-offset-huge 48 '>Q' 0x7fffffffffff0000 56 '>I' 1
crafted snapshots-too-many 60 '>I' 65537
crafted snapshot-offset 64 '>Q' 3 60 '>I' 1
crafted snapshot-offset-huge 60 '>I' 65536 64 '>Q' 0x7fffffffffff0000
crafted snapshot-extra 60 '>I' 5 64 '>Q' 0
crafted snapshots-zero 60 '>I' 3 64 '>Q' 0x10000
crafted l1-too-large 36 '>I' 0x400001
crafted l1-too-small 36 '>I' 0
crafted l1-offset 40 '>Q' 3
crafted l1-unreadable 40 '>Q' 0x7fffffffffff0000
crafted image-too-big 24 '>Q' 0x7fffffffffffff00
crafted size-l1-small 24 '>Q' 0x0100000000000000
crafted size-huge 24 '>Q' 0xffffffffffffffff
crafted backing-offset 8 '>Q' 70000
crafted backing-long 8 '>Q' 1000 16 '>I' 2000
crafted backing-past-cluster 8 '>Q' 65000 16 '>I' 1000
crafted backing-zeros 8 '>Q' 0x8000 16 '>I' 12

# vmdk: bad sparse headers.
qemu-img create -q -f vmdk sparse.vmdk 1M
# vmdk_crafted NAME OFFSET FORMAT VALUE...: sparse.vmdk with fields overwritten, compared.
vmdk_crafted() {
  local name="$1"
  shift
  cp sparse.vmdk "$name.vmdk"
  while [ $# -gt 0 ]; do
    patch_field "$name.vmdk" "$1" "$2" "$3"
    shift 3
  done
  compare_info "$name.vmdk"
}
vmdk_crafted grain3 20 '<Q' 3
vmdk_crafted version0 4 '<I' 0
vmdk_crafted version9 4 '<I' 9
vmdk_crafted no-grain 20 '<Q' 0
vmdk_crafted grain-huge 20 '<Q' 0x200001
vmdk_crafted grain-max 20 '<Q' 0x200000
vmdk_crafted no-gtes 44 '<I' 0
vmdk_crafted gtes513 44 '<I' 513
vmdk_crafted gtes-huge-grain 20 '<Q' 0x200001 44 '<I' 0x8000001
vmdk_crafted l1-max 44 '<I' 1 12 '<Q' $((128 * (1 << 25)))
vmdk_crafted l1-too-big 44 '<I' 1 12 '<Q' $((128 * (1 << 25) + 1))
vmdk_crafted l1-wraps 44 '<I' 1 12 '<Q' 0x10000000000
vmdk_crafted capacity-huge 12 '<Q' 0x40000000000000
head -c 100 sparse.vmdk > short.vmdk
compare_info short.vmdk
: > x.raw
descriptor() {
  printf '# Disk DescriptorFile\nversion=1\n%b' "$2" > "$1.vmdk"
  compare_with_qemu info "$1.vmdk"
}
descriptor no-create-type 'RW 100 FLAT "x.raw" 0\n'
descriptor no-extents 'createType="monolithicFlat"\n'
descriptor bad-create-type 'createType="foo"\nRW 100 FLAT "x.raw" 0\n'
descriptor text-sparse-type 'createType="monolithicSparse"\nRW 100 FLAT "x.raw" 0\n'
descriptor missing-extent 'createType="monolithicFlat"\nRW 100 FLAT "nothere.raw" 0\n'
descriptor flat-ok 'createType="monolithicFlat"\nRW 100 FLAT "x.raw" 0\n'
descriptor with-parent-cid 'parentCID=ffffffff\ncreateType="monolithicFlat"\nRW 100 FLAT "x.raw" 0\n'
cp sparse.vmdk truncated-grain.vmdk
truncate -s 30000 truncated-grain.vmdk
compare_info truncated-grain.vmdk
finish
