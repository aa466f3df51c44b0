#!/bin/bash
# Regenerates the checked-in seed corpora of the fuzz targets from images qemu-img makes
# (small slices: the bytes each parser reads). Run from anywhere; rewrites */testdata/*_corpus.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

q="$root/crates/qcow2/testdata/header_corpus"
e="$root/crates/qcow2/testdata/entries_corpus"
d="$root/crates/vmdk/testdata/descriptor_corpus"
s="$root/crates/vmdk/testdata/sparse_header_corpus"
p="$root/crates/probe/testdata/probe_corpus"
rm -rf "$q" "$e" "$d" "$s" "$p"
mkdir -p "$q" "$e" "$d" "$s" "$p"

qemu-img create -q -f raw base.raw 1M
i=0
for opts in "compat=0.10" "compat=1.1" "cluster_size=512" "cluster_size=2M" \
            "refcount_bits=1" "refcount_bits=64" "lazy_refcounts=on" "extended_l2=on" \
            "compression_type=zstd" "data_file=ext.raw" "backing_file=base.raw,backing_fmt=raw"; do
  i=$((i + 1))
  qemu-img create -q -f qcow2 -o "$opts" "img$i.qcow2" 64M
  head -c 4096 "img$i.qcow2" > "$q/qemu-img-$i"
  head -c 2048 "img$i.qcow2" > "$p/qcow2-$i"
done
qemu-img bitmap --add img2.qcow2 b0 2>/dev/null && head -c 4096 img2.qcow2 > "$q/qemu-img-bitmap"

# Entries: geometry bytes then L1/L2-shaped words from a written image.
qemu-io -c "write 0 128k" -c "write 1M 64k" img2.qcow2 >/dev/null
{ printf '\x07\x04\x00'; dd if=img2.qcow2 bs=64k skip=3 count=1 status=none | head -c 512; } > "$e/l2-64k"
{ printf '\x00\x00\x01'; head -c 256 /dev/zero; } > "$e/zero"

for sub in monolithicSparse streamOptimized twoGbMaxExtentSparse monolithicFlat twoGbMaxExtentFlat; do
  qemu-img create -q -f vmdk -o subformat=$sub "v-$sub.vmdk" 64M
  head -c 2048 "v-$sub.vmdk" > "$p/vmdk-$sub"
  case $sub in
    *Sparse|streamOptimized)
      head -c 512 "v-$sub.vmdk" > "$s/$sub"
      dd if="v-$sub.vmdk" bs=512 skip=1 count=20 status=none | tr -d '\000' > "$d/$sub" ;;
    *) cp "v-$sub.vmdk" "$d/$sub" ;;
  esac
done
for fmt in vdi vpc vhdx qed qcow; do
  qemu-img create -q -f $fmt "x.$fmt" 16M 2>/dev/null && head -c 2048 "x.$fmt" > "$p/$fmt"
done
head -c 2048 base.raw > "$p/raw"
echo "seeds written under crates/*/testdata"
