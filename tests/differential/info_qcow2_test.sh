#!/bin/bash
# Differential test: `instar info` against `qemu-img info` on every qcow2 option qemu-img can
# create: versions, cluster sizes, refcount widths, features, data files, bitmaps, snapshots,
# encryption. Human and JSON, byte for byte.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/differential/info_helpers.sh"
cd "$WORK" || exit 1

qemu-img create -q -f qcow2 plain.qcow2 64M
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1G
compare_info plain.qcow2
compare_info v2.qcow2
compare_info plain.qcow2 -f qcow2
compare_info plain.qcow2 -U

for cs in 512 1K 2K 4K 8K 16K 32K 64K 128K 256K 512K 1M 2M; do
  qemu-img create -q -f qcow2 -o cluster_size=$cs cs$cs.qcow2 3G
  compare_info cs$cs.qcow2
done
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4K v2cs4K.qcow2 1M
compare_info v2cs4K.qcow2

for bits in 1 2 4 8 16 32 64; do
  qemu-img create -q -f qcow2 -o refcount_bits=$bits rc$bits.qcow2 10M
  compare_info rc$bits.qcow2
done

qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 1M
qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 1M
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16K ext16.qcow2 1T
qemu-img create -q -f qcow2 -o compression_type=zstd zstd.qcow2 1M
qemu-img create -q -f qcow2 -o lazy_refcounts=on,extended_l2=on,compression_type=zstd,refcount_bits=64 all.qcow2 5G
for f in lazy ext ext16 zstd all; do compare_info $f.qcow2; done

qemu-img create -q -f qcow2 -o data_file=ext.data ext-data.qcow2 64M
qemu-img create -q -f qcow2 -o data_file=raw.data,data_file_raw=on raw-data.qcow2 64M
compare_info ext-data.qcow2
compare_info raw-data.qcow2
rm raw.data
compare_info raw-data.qcow2

qemu-img create -q -f qcow2 bitmaps.qcow2 64M
qemu-img bitmap --add bitmaps.qcow2 b0
qemu-img bitmap --add -g 512K --disable bitmaps.qcow2 "second bitmap"
qemu-img bitmap --add -g 2M bitmaps.qcow2 'q"uoted\name'
compare_info bitmaps.qcow2

qemu-img create -q -f qcow2 snaps.qcow2 64M
qemu-img snapshot -c first snaps.qcow2
qemu-img snapshot -c "a rather long snapshot name that overflows its column" snaps.qcow2
qemu-img snapshot -c 1234567890123456 snaps.qcow2
qemu-img snapshot -c x snaps.qcow2
compare_info snaps.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 snaps-v2.qcow2 1M
qemu-img snapshot -c old snaps-v2.qcow2
compare_info snaps-v2.qcow2
qemu-img bitmap --add snaps.qcow2 mixed
compare_info snaps.qcow2

secret=(--object secret,id=sec0,data=password)
qemu-img create -q "${secret[@]}" -f qcow2 \
  -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 luks.qcow2 16M
qemu-img create -q "${secret[@]}" -f qcow2 \
  -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256,encrypt.hash-alg=sha512 \
  luks-essiv.qcow2 16M
compare_info luks.qcow2
compare_info luks-essiv.qcow2
# Legacy AES (qemu-img no longer creates it): the method field only.
cp plain.qcow2 aes.qcow2
patch_field aes.qcow2 32 '>I' 1
compare_info aes.qcow2

# Header bits qemu reports.
cp plain.qcow2 dirty.qcow2
patch_field dirty.qcow2 72 '>Q' 1
cp plain.qcow2 corrupt.qcow2
patch_field corrupt.qcow2 72 '>Q' 2
cp plain.qcow2 autoclear.qcow2
patch_field autoclear.qcow2 88 '>Q' 0x8000000000000000
for f in dirty corrupt autoclear; do compare_info $f.qcow2; done

# Odd names: JSON escapes, relative directories.
mkdir -p "sub dir"
qemu-img create -q -f qcow2 "sub dir/we\"ird\\é.qcow2" 1M
compare_info "sub dir/we\"ird\\é.qcow2"
qemu-img create -q -f qcow2 "$(printf 'ctl\001\177.qcow2')" 1M
compare_info "$(printf 'ctl\001\177.qcow2')"
compare_info "./sub dir/../plain.qcow2"
compare_info "$WORK/plain.qcow2"
finish
