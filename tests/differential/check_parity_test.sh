#!/bin/bash
# Differential test: `instar check` against `qemu-img check`. Clean images over cluster sizes,
# refcount widths and features; corrupted images (one defect class each, built by editing the
# qcow2 structures directly) with and without snapshots at several refcount widths: the
# report (human and JSON), stderr and exit code, then each repair mode, after which qemu-img
# must find instar's repaired image exactly as it finds its own. Also the multi-pass path, a
# 64 TiB sparse image, vmdk, raw and the error paths.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
CORRUPT="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/check/qcow2_corrupt.py"
cd "$WORK" || exit 1

# run_both DIR_Q DIR_I ARGS...: qemu-img in DIR_Q, instar in DIR_I; compares like
# compare_with_qemu. Extra instar-only flags go in $INSTAR_EXTRA.
run_both() {
  local dq="$1" di="$2"
  shift 2
  CHECKS=$((CHECKS + 1))
  (cd "$dq" && qemu-img "$@" >"$WORK/.q.out" 2>"$WORK/.q.err"; echo $? >"$WORK/.q.rc")
  (cd "$di" && "$INSTAR" "${@:1:1}" ${INSTAR_EXTRA:-} "${@:2}" >"$WORK/.i.out" 2>"$WORK/.i.err"
   echo $? >"$WORK/.i.rc")
  sed -i 's/^qemu-img: /PROG: /; s/Try .qemu-img --help./Try PROG --help/' "$WORK/.q.err"
  sed -i 's/^instar: /PROG: /; s/Try .instar --help./Try PROG --help/' "$WORK/.i.err"
  if ! cmp -s "$WORK/.q.rc" "$WORK/.i.rc" || ! cmp -s "$WORK/.q.out" "$WORK/.i.out" ||
     ! cmp -s "$WORK/.q.err" "$WORK/.i.err"; then
    echo "MISMATCH for '$*' (qemu-img rc $(cat "$WORK/.q.rc"), instar rc $(cat "$WORK/.i.rc")):" >&2
    diff -u "$WORK/.q.out" "$WORK/.i.out" | head -20 | sed 's/^/    /' >&2
    diff -u "$WORK/.q.err" "$WORK/.i.err" | head -20 | sed 's/^/    /' >&2
    fail "check $*"
  fi
}

# make_image FILE WIDTH CLUSTER_SIZE SNAPSHOT(0|1) [EXTRA_OPTS]
make_image() {
  local f="$1" width="$2" cs="$3" snap="$4" extra="${5:-}"
  rm -f "$f"
  qemu-img create -q -f qcow2 -o "refcount_bits=$width,cluster_size=$cs$extra" "$f" 64M
  qemu-io -c 'write 0 1M' -c 'write 10M 64k' -c 'write -c 20M 64k' "$f" >/dev/null
  if [ "$snap" = 1 ]; then
    qemu-img snapshot -c s1 "$f"
    qemu-io -c 'write 512k 64k' "$f" >/dev/null
  fi
}

mkdir -p q i

# --- Clean images: every refcount width, several cluster sizes, features -------------------
for width in 1 2 4 8 16 32 64; do
  for cs in 512 65536 2M; do
    make_image q/clean.qcow2 "$width" "$cs" 0
    cp q/clean.qcow2 i/clean.qcow2
    run_both q i check clean.qcow2
    run_both q i check --output=json clean.qcow2
  done
done
for extra in ",extended_l2=on" ",compat=0.10,refcount_bits=16" ",lazy_refcounts=on"; do
  make_image q/feat.qcow2 16 65536 1 "$extra"
  cp q/feat.qcow2 i/feat.qcow2
  run_both q i check feat.qcow2
  run_both q i check --output=json feat.qcow2
done
# Persistent bitmaps: the directory and bitmap tables are metadata too.
make_image q/bitmap.qcow2 16 65536 0
qemu-img bitmap --add q/bitmap.qcow2 b0
qemu-img bitmap --add q/bitmap.qcow2 b1
qemu-io -c 'write 30M 1M' q/bitmap.qcow2 >/dev/null
cp q/bitmap.qcow2 i/bitmap.qcow2
run_both q i check bitmap.qcow2
# ... and as a program without bitmap support leaves it (qemu warns, repairs drop the bitmaps).
python3 "$CORRUPT" q/bitmap.qcow2 bitmaps_autoclear
for mode in "" "-r leaks"; do
  cp q/bitmap.qcow2 q/bm.qcow2
  cp q/bitmap.qcow2 i/bm.qcow2
  # shellcheck disable=SC2086
  run_both q i check $mode bm.qcow2
done
cp i/bm.qcow2 q/bm-by-instar.qcow2
(cd q && qemu-img check bm.qcow2 >"$WORK/.a.out" 2>&1; qemu-img check bm-by-instar.qcow2 >"$WORK/.b.out" 2>&1)
check "bitmaps dropped as qemu drops them" cmp -s "$WORK/.a.out" "$WORK/.b.out"
# Many snapshots sharing clusters.
make_image q/snaps.qcow2 8 4096 1
for n in 2 3 4; do qemu-img snapshot -c "snap $n" q/snaps.qcow2; qemu-io -c "write $((n))M 8k" q/snaps.qcow2 >/dev/null; done
cp q/snaps.qcow2 i/snaps.qcow2
run_both q i check snaps.qcow2

# repaired_alike LABEL: qemu-img must see instar's repair (i/img.qcow2) exactly as it sees its
# own (q/img.qcow2), in a file as long.
repaired_alike() {
  cp i/img.qcow2 q/img-by-instar.qcow2
  (cd q && qemu-img check img.qcow2 >"$WORK/.a.out" 2>"$WORK/.a.err"; echo $? >>"$WORK/.a.out")
  (cd q && qemu-img check img-by-instar.qcow2 >"$WORK/.b.out" 2>"$WORK/.b.err"; echo $? >>"$WORK/.b.out")
  stat -c %s q/img.qcow2 >>"$WORK/.a.out"
  stat -c %s i/img.qcow2 >>"$WORK/.b.out"
  CHECKS=$((CHECKS + 1))
  if ! cmp -s "$WORK/.a.out" "$WORK/.b.out" || ! cmp -s "$WORK/.a.err" "$WORK/.b.err"; then
    echo "MISMATCH after $1:" >&2
    diff -u "$WORK/.a.out" "$WORK/.b.out" | sed 's/^/    /' >&2
    diff -u "$WORK/.a.err" "$WORK/.b.err" | sed 's/^/    /' >&2
    fail "repair $1"
  fi
}

# --- Corrupted images: detection, then each repair -----------------------------------------
check_defect() {  # DEFECT WIDTH SNAPSHOT [REPAIRED_DIFFERS]
  local defect="$1" width="$2" snap="$3" repaired_differs="${4:-0}"
  make_image q/base.qcow2 "$width" 65536 "$snap"
  python3 "$CORRUPT" q/base.qcow2 "$defect" || { fail "corrupt $defect"; return; }
  cp q/base.qcow2 i/base.qcow2
  run_both q i check base.qcow2
  run_both q i check --output=json base.qcow2
  for mode in leaks all; do
    cp q/base.qcow2 q/img.qcow2
    cp q/base.qcow2 i/img.qcow2
    run_both q i check -r "$mode" img.qcow2
    # A repair that qemu stops on its overlap check loses qemu's cached refcount repairs (the
    # image is unusable before its cache is written); instar's are on disk (docs/check.md).
    [ "$repaired_differs" = 1 ] && [ "$mode" = all ] && continue
    repaired_alike "-r $mode $defect (width $width, snapshot $snap)"
  done
}

for width in 1 16 64; do
  for defect in leak leak_many refcount_zero refcount_high copied_l2_clear copied_l2_set \
                copied_l1_clear l2_unaligned l2_past_eof l2_reserved l1_reserved l1_unaligned \
                l2_overlaps_refblock refblock_unaligned reftable_reserved corrupt_bit \
                l2_duplicate compressed_copied zero_unaligned refblock_outside l1_to_header \
                l1_truncated reftable_empty; do
    check_defect "$defect" "$width" 0
  done
  check_defect l1_to_l1 "$width" 0 1
done
for width in 16 64; do
  for defect in leak refcount_zero refcount_low refcount_high copied_l2_clear copied_l1_clear \
                l2_unaligned snapshot_l1_unaligned l2_duplicate snapshot_count_lies \
                snapshot_incomplete snapshot_extra_big snapshot_extra_huge; do
    check_defect "$defect" "$width" 1
  done
done
# More entries than qemu allows: reported, or under -r all cut to 65536, whose rewritten table
# then overlaps the old one (qemu's overlap check stops it). qemu-img takes ~12 s here: once.
check_defect snapshot_count_huge 16 1

# --- Snapshot-table rewrites where qemu adds refcount structures ---------------------------
# A file ending at a refcount block boundary: the rewritten table needs a new block (which
# counts itself, or, for a table across the boundary, is found after it); past the reach of
# the refcount table, a larger table. One ending just before: the table ends inside the file's
# last sector, whose length must stay qemu's. The repaired file must be qemu's, byte for byte.
EDGE="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/check/refblock_edge_image.sh"
# REFCOUNT_BITS BOUNDARY GAP_CLUSTERS SNAPSHOTS SNAPSHOT_NAME_BYTES FILL (the last entry is
# made incomplete; three entries of 250-byte names make a two-cluster table; 105 make one
# longer than a refcount block covers, whose new block lies in the next block's range and is
# counted there, after that block is added: ~1 min to build)
for edge in "64 32768 0 1 2 8k" "16 131072 0 1 2 8k" "64 32768 1 3 250 8k" "64 32768 0 3 250 8k" \
            "64 32768 1 1 250 8k" "64 2097152 0 1 2 1950k" "16 8388608 0 1 2 8000k" \
            "64 32768 0 105 250 8k"; do
  # shellcheck disable=SC2086
  bash "$EDGE" q/edge.qcow2 $edge || { fail "edge image $edge"; continue; }
  python3 "$CORRUPT" q/edge.qcow2 snapshot_last_incomplete
  cp q/edge.qcow2 i/edge.qcow2
  run_both q i check edge.qcow2
  cp q/edge.qcow2 q/edge-r.qcow2
  cp q/edge.qcow2 i/edge-r.qcow2
  run_both q i check -r all edge-r.qcow2
  run_both q i check --output=json edge-r.qcow2
  check "edge $edge: repaired file as long as qemu's" \
    test "$(stat -c %s q/edge-r.qcow2)" = "$(stat -c %s i/edge-r.qcow2)"
  check "edge $edge: repaired image reads as qemu's" \
    qemu-img compare -q q/edge-r.qcow2 i/edge-r.qcow2
  check "edge $edge: repaired file is qemu's byte for byte" cmp -s q/edge-r.qcow2 i/edge-r.qcow2
done

# --- Multi-pass: the same findings when the count covers only a few clusters per pass ------
for defect in leak_many refcount_zero l2_overlaps_refblock l2_duplicate; do
  make_image q/mp.qcow2 16 65536 1
  python3 "$CORRUPT" q/mp.qcow2 "$defect"
  cp q/mp.qcow2 i/mp.qcow2
  for n in 1 7 32; do
    INSTAR_EXTRA="--max-clusters-per-pass=$n" run_both q i check mp.qcow2
  done
done
make_image q/mp.qcow2 16 65536 0
python3 "$CORRUPT" q/mp.qcow2 leak_many
cp q/mp.qcow2 i/mp.qcow2
INSTAR_EXTRA="--max-clusters-per-pass=5" run_both q i check -r leaks mp.qcow2

# --- Multi-window: findings of every window in qemu's order, rebuilds window by window -----
# Windows of 8 clusters (the least at 1-bit refcounts) and 64 put the refcount overflows and
# reserved-bit findings of spread_duplicates, refcount-block findings, and the clusters a
# rebuild takes (512-byte clusters at 64 bits: a refcount block per 64 clusters) in different
# windows. A rebuilt image must be qemu's own, byte for byte.
for shape in "1 512 0" "1 65536 0" "16 65536 0" "16 65536 1" "64 512 0" "64 512 1"; do
  read -r width cs snap <<<"$shape"
  for defect in spread_duplicates refcount_zero reftable_reserved l2_overlaps_refblock; do
    make_image q/mw.qcow2 "$width" "$cs" "$snap"
    python3 "$CORRUPT" q/mw.qcow2 "$defect"
    cp q/mw.qcow2 i/mw.qcow2
    for n in 8 64; do
      export INSTAR_EXTRA="--max-clusters-per-pass=$n"
      run_both q i check mw.qcow2
      run_both q i check --output=json mw.qcow2
      cp q/mw.qcow2 q/img.qcow2
      cp q/mw.qcow2 i/img.qcow2
      run_both q i check -r all img.qcow2
      unset INSTAR_EXTRA
      label="-r all $defect (width $width, cluster $cs, snapshot $snap, $n per window)"
      repaired_alike "$label"
      check "$label: qemu's bytes" cmp -s q/img.qcow2 i/img.qcow2
      check "$label: guest content" qemu-img compare -q q/img.qcow2 i/img.qcow2
    done
  done
done

# --- Scale: a 64 TiB sparse image ----------------------------------------------------------
qemu-img create -q -f qcow2 q/huge.qcow2 64T
qemu-io -c 'write 0 64k' -c 'write 60T 64k' q/huge.qcow2 >/dev/null
cp q/huge.qcow2 i/huge.qcow2
run_both q i check huge.qcow2
run_both q i check --output=json huge.qcow2

# --- Header details qemu's check opens past -----------------------------------------------
# A data-file extension without the incompatible bit is ignored; a backing name past the first
# 4 KiB of the header cluster is read with the whole cluster; data-file-raw alone is refused.
qemu-img create -q -f qcow2 q/hdr.qcow2 4M
python3 - q/hdr.qcow2 <<'PY'
import shutil, struct, sys
base = sys.argv[1]
def variant(name, edits):
    path = base.replace("hdr.qcow2", name)
    shutil.copyfile(base, path)
    with open(path, "r+b") as f:
        for offset, data in edits:
            f.seek(offset)
            f.write(data)
name = b"../elsewhere/base.qcow2"
variant("datafile-ext.qcow2", [(112, struct.pack(">II", 0x44415441, 8) + b"data.raw")])
variant("backing-far.qcow2", [(8, struct.pack(">QI", 0x1000, len(name))), (0x1000, name)])
variant("datafile-raw.qcow2", [(88, struct.pack(">Q", 2))])
# Open-time refusals: a backing format longer than qemu's 15 bytes, an extension running past
# the header cluster, a file that ends inside the header (read as zeros past its end).
ext_end = struct.pack(">II", 0, 0)
variant("format-long.qcow2", [(112, struct.pack(">II", 0xE2792ACA, 16) + b"q" * 16 + ext_end)])
variant("ext-huge.qcow2", [(112, struct.pack(">II", 0x12345678, 0xFFFFFFFF))])
# A virtual size that is not whole sectors (qemu counts whole sectors for total clusters); an
# unknown encryption method and an oversized extension (open-time messages).
variant("size-odd.qcow2", [(24, struct.pack(">Q", 4 * 1024 * 1024 + 3))])
variant("crypt-odd.qcow2", [(32, struct.pack(">I", 0x8000))])
# An empty L1 table at an invalid offset: qemu validates the offset before the table's size.
variant("l1-order.qcow2", [(36, struct.pack(">IQ", 0, 0xFFFF000000000000))])
# An unknown encryption method and an oversized L1 table: qemu validates the tables first.
variant("crypt-l1.qcow2", [(32, struct.pack(">II", 0xFFFFFFFF, 0x7FFFFFFF))])
# No refcount table (check opens past it) and an unaligned L1 table: check's own refusal.
variant("noreftable-l1.qcow2", [(40, struct.pack(">Q", 0x30002)), (56, struct.pack(">I", 0))])
with open(base, "rb") as f:
    head = f.read(50)
with open(base.replace("hdr.qcow2", "short.qcow2"), "wb") as f:
    f.write(head)
PY
for f in datafile-ext backing-far datafile-raw format-long ext-huge short size-odd crypt-odd l1-order crypt-l1 noreftable-l1; do
  cp q/$f.qcow2 i/
  run_both q i check $f.qcow2
done

# qemu opens the backing chain before it checks: a missing layer fails the check (and a
# repair writes nothing); a present one is opened and the overlay checked.
for d in q i; do
  qemu-img create -q -f qcow2 $d/chain-base.qcow2 4M
  qemu-img create -q -f qcow2 -b chain-base.qcow2 -F qcow2 $d/chain-mid.qcow2
  qemu-img create -q -f qcow2 -b chain-mid.qcow2 -F qcow2 $d/chain-top.qcow2
  qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 $d/orphan.qcow2 4M
  qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 $d/chain-gone-mid.qcow2 4M
  qemu-img create -q -f qcow2 -b chain-gone-mid.qcow2 -F qcow2 $d/deep-orphan.qcow2 4M -u
  qemu-img create -q -f vmdk $d/vbase.vmdk 4M
  qemu-img create -q -f vmdk -b vbase.vmdk -F vmdk $d/vover.vmdk
  qemu-img create -q -f vmdk $d/vgone.vmdk 4M
  qemu-img create -q -f vmdk -b vgone.vmdk -F vmdk $d/vorphan.vmdk
  rm $d/vgone.vmdk
done
cp i/orphan.qcow2 orphan-before.qcow2 || fail "the orphan image was not made"
for args in "check chain-top.qcow2" "check --output=json chain-top.qcow2" "check orphan.qcow2" \
            "check deep-orphan.qcow2" "check -r all orphan.qcow2" "check vover.vmdk" \
            "check vorphan.vmdk"; do
  # shellcheck disable=SC2086
  run_both q i $args
done
check "a repair over a missing backing file writes nothing" cmp -s orphan-before.qcow2 i/orphan.qcow2

# --- VMDK headers qemu refuses when it opens them -----------------------------------------
# No capacity but a descriptor offset: qemu reads the embedded descriptor as a descriptor file
# (whose create type it refuses); a capacity past the block layer's limit; a version 3 extent
# that is not streamOptimized, which qemu opens for writing (a repair) only read-only.
qemu-img create -q -f vmdk q/hdr.vmdk 4M
qemu-img create -q -f vmdk -o subformat=streamOptimized q/stream.vmdk 4M
python3 - q/hdr.vmdk q/stream.vmdk <<'PY'
import shutil, struct, sys
sparse, stream = sys.argv[1], sys.argv[2]
def variant(base, name, offset, data):
    path = base.rsplit("/", 1)[0] + "/" + name
    shutil.copyfile(base, path)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
variant(sparse, "cap0.vmdk", 12, struct.pack("<Q", 0))
variant(sparse, "capmax.vmdk", 12, struct.pack("<Q", 0xFFFFFFFFFFFFFFFF))
# qemu keeps the grain directory's entry span and size in 32 bits: grains of 2^32 and 2^23
# sectors (512 per table) span "0"; a capacity of 2^62 sectors needs "0" entries.
variant(sparse, "grain32.vmdk", 20, struct.pack("<Q", 1 << 32))
variant(sparse, "grain23.vmdk", 20, struct.pack("<Q", 1 << 23))
variant(sparse, "cap62.vmdk", 12, struct.pack("<Q", 1 << 62))
variant(stream, "v3-plain.vmdk", 77, struct.pack("<H", 0))
PY
cp q/cap0.vmdk q/capmax.vmdk q/stream.vmdk q/v3-plain.vmdk q/grain32.vmdk q/grain23.vmdk \
   q/cap62.vmdk i/
for f in cap0 capmax stream v3-plain grain32 grain23 cap62; do
  for mode in "" "-r all" "--output=json"; do
    # shellcheck disable=SC2086
    run_both q i check $mode $f.vmdk
  done
done

# --- Other formats and errors --------------------------------------------------------------
qemu-img create -q -f raw q/disk.raw 1M
qemu-img create -q -f vmdk q/disk.vmdk 64M
qemu-io -f vmdk -c 'write 0 1M' q/disk.vmdk >/dev/null
qemu-img create -q -f qcow q/disk.qcow 1G   # qcow version 1 and vpc: qemu has no check
qemu-img create -q -f vpc q/disk.vpc 64M
cp q/disk.raw q/disk.vmdk q/disk.qcow q/disk.vpc i/
head -c 200000 q/disk.vmdk > q/short.vmdk   # grains past the end of the file
cp q/short.vmdk i/
printf 'garbage' > q/junk.qcow2; cp q/junk.qcow2 i/
cp q/clean.qcow2 i/clean.qcow2 2>/dev/null
for args in "check disk.raw" "check -f raw clean.qcow2" "check -r all disk.raw" \
            "check disk.vmdk" "check --output=json disk.vmdk" "check -r leaks disk.vmdk" \
            "check short.vmdk" "check -f qcow2 junk.qcow2" "check missing.qcow2" \
            "check -r foo clean.qcow2" "check --output=xml clean.qcow2" "check" \
            "check a b" "check -q clean.qcow2" "check -q --output=json clean.qcow2" \
            "check -U -r all clean.qcow2" "check -f nosuch clean.qcow2" "check -r" \
            "check --bogus clean.qcow2" "check disk.qcow" "check -r all disk.qcow" \
            "check --output=json disk.vpc" "check -r leaks disk.vpc"; do
  # shellcheck disable=SC2086
  run_both q i $args
done
finish
