#!/bin/bash
# Differential test: crates/chain_read (through the chain_to_raw host tool) against qemu-img on
# images qemu-img and qemu-io make. For every image or chain: the guest view chain_to_raw
# writes is byte-for-byte what `qemu-img convert -O raw` writes (with the default budget and
# again with a tiny cache and odd read sizes, so eviction and unaligned reads are exercised),
# and the layer Chain::Locate names for every range is the depth `qemu-img map` reports
# (below the smallest virtual size in the chain), and for the top alone what `qemu-io -c map`
# reports.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
TOOL="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/chain_read/chain_to_raw"
FOOTER="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/chain_read/vmdk_stream_footer.py"
cd "$WORK" || exit 1

# fmt FILE: the format qemu-img detects.
fmt() { qemu-img info --output=json "$1" | sed -n 's/^ *"format": "\(.*\)",/\1/p' | head -1; }

# chain_args TOP: FORMAT:FILE for TOP and each backing file below it.
chain_args() {
  local f="$1" b
  while [ -n "$f" ]; do
    echo "$(fmt "$f"):$f"
    b=$(qemu-img info --output=json "$f" | sed -n 's/^ *"backing-filename": "\(.*\)",*/\1/p' | head -1)
    f="$b"
  done
}

# Coalesces "start length layer" lines into runs of equal layer.
coalesce() {
  awk '{ if (n && $3 == l && $1 == s + len) { len += $2 } else { if (n) print s, len, l; s = $1; len = $2; l = $3; n = 1 } }
       END { if (n) print s, len, l }'
}

# compare_view TOP: the checks described above. $BUDGET (default: the layer default) and
# $SMALL (a cache of a few blocks) are the per-layer budgets of the two reads; compressed
# clusters need room for their decompression buffers (layer.h).
compare_view() {
  local top="$1" args=() what="$1"
  mapfile -t args < <(chain_args "$top")
  CHECKS=$((CHECKS + 1))
  rm -f ref.raw out.raw
  if ! qemu-img convert -O raw "$top" ref.raw; then fail "qemu-img convert $what"; return; fi
  local ok=1
  if ! "$TOOL" ${BUDGET:+--budget "$BUDGET"} out.raw "${args[@]}"; then
    echo "chain_to_raw failed on $what" >&2; ok=0
  elif ! cmp -s ref.raw out.raw; then
    echo "MISMATCH guest view of $what: $(cmp ref.raw out.raw 2>&1 | head -1)" >&2; ok=0
  fi
  rm -f out.raw
  if [ "$ok" = 1 ] && ! "$TOOL" --budget "${SMALL:-99000}" --chunk 1536000 out.raw "${args[@]}"; then
    echo "chain_to_raw (small cache) failed on $what" >&2; ok=0
  elif [ "$ok" = 1 ] && ! cmp -s ref.raw out.raw; then
    echo "MISMATCH guest view (small cache) of $what" >&2; ok=0
  fi
  # Allocation: the deciding layer of every range, below the smallest virtual size.
  local count=${#args[@]} min a s
  min=$(for a in "${args[@]}"; do qemu-img info --output=json "${a#*:}" | sed -n 's/^ *"virtual-size": \([0-9]*\),/\1/p'; done | sort -n | head -1)
  qemu-img map --output=json "$top" | tr -d '{},"' |
    awk -v count="$count" '{ for (i = 1; i <= NF; i++) f[$i] = $(i + 1);
                             print f["start:"], f["length:"], (f["present:"] == "true" ? f["depth:"] : count) }' |
    awk -v min="$min" '$1 < min { if ($1 + $2 > min) $2 = min - $1; print }' | coalesce >map.q
  "$TOOL" ${BUDGET:+--budget "$BUDGET"} --allocated-above "0:$count" - "${args[@]}" | awk '{ print $1, $2, $4 }' |
    awk -v min="$min" '$1 < min { if ($1 + $2 > min) $2 = min - $1; print }' | coalesce >map.i
  if ! cmp -s map.q map.i; then
    echo "MISMATCH allocation of $what (start length layer; qemu-img map, then chain_read):" >&2
    diff map.q map.i | head -20 >&2; ok=0
  fi
  # The top alone: qemu-io's map is bdrv_is_allocated on the top layer.
  qemu-io -r -f "$(fmt "$top")" -c map "$top" |
    sed -n 's/.*(0x\([0-9a-f]*\)) bytes *\(not \)*allocated at offset .*(0x\([0-9a-f]*\))$/\3 \1 \2/p' |
    while read -r off len notalloc; do echo "$((16#$off)) $((16#$len)) $([ -n "$notalloc" ] && echo 1 || echo 0)"; done |
    coalesce >top.q
  "$TOOL" ${BUDGET:+--budget "$BUDGET"} --allocated-above "0:1" - "${args[@]}" | awk '{ print $1, $2, $4 }' | coalesce >top.i
  if ! cmp -s top.q top.i; then
    echo "MISMATCH top-layer allocation of $what (qemu-io map, then chain_read):" >&2
    diff top.q top.i | head -20 >&2; ok=0
  fi
  [ "$ok" = 1 ] || fail "$what"
}

# A raw source with random, patterned and zero stretches (compressible and not).
head -c 3M /dev/urandom >src.raw
yes "instar chain_read parity" | head -c 2M >>src.raw
head -c 1M /dev/zero >>src.raw
head -c 1536K /dev/urandom >>src.raw
truncate -s 12M src.raw
printf 'tail' | dd of=src.raw bs=1 seek=$((12 * 1048576 - 4)) conv=notrunc status=none

# writes IMAGE: data, zeros and discards at cluster-straddling offsets.
writes() {
  qemu-io -f "$(fmt "$1")" -c "write -P 0x5a 0 1536k" -c "write -P 0x11 3000k 10k" \
          -c "write -z 512k 64k" -c "write -P 0x22 5M 2M" -c "discard 5632k 256k" \
          -c "write -z 6500k 3k" -c "write -P 0x33 $(( 16 * 1048576 - 512 )) 512" "$1" >/dev/null
}

# --- qcow2: cluster sizes, refcount widths, versions, extended L2 ---
for cs in 512 1024 4096 65536 2097152; do
  qemu-img create -q -f qcow2 -o cluster_size=$cs "c$cs.qcow2" 16M
  writes "c$cs.qcow2"
  compare_view "c$cs.qcow2"
done
for rb in 1 8 64; do
  qemu-img create -q -f qcow2 -o refcount_bits=$rb "r$rb.qcow2" 16M
  writes "r$rb.qcow2"
  compare_view "r$rb.qcow2"
done
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 16M
writes v2.qcow2
compare_view v2.qcow2
for cs in 16384 65536 2097152; do
  qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs "x$cs.qcow2" 16M
  writes "x$cs.qcow2"
  qemu-io -c "write -P 0x44 $(( cs + cs / 32 )) $(( cs / 16 ))" -c "write -z $(( 2 * cs + cs / 8 )) $(( cs / 32 ))" "x$cs.qcow2" >/dev/null
  compare_view "x$cs.qcow2"
done
for mode in metadata falloc full; do
  qemu-img create -q -f qcow2 -o preallocation=$mode "p$mode.qcow2" 4M
  qemu-io -c "write -P 0x66 100k 300k" "p$mode.qcow2" >/dev/null
  compare_view "p$mode.qcow2"
done
# A virtual size that is not a whole number of clusters.
qemu-img create -q -f qcow2 odd.qcow2 $(( 16 * 1048576 + 5 * 512 ))
qemu-io -c "write -P 0x77 $(( 16 * 1048576 )) 2560" odd.qcow2 >/dev/null
compare_view odd.qcow2
# A header size that is not a whole number of sectors (qemu rounds it down), and the corrupt
# flag (qemu reads such images read-only).
qemu-img create -q -f qcow2 odd_header.qcow2 4096
qemu-io -c "write -P 0x78 0 4096" odd_header.qcow2 >/dev/null
printf '\x00\x00\x00\x00\x00\x00\x0b\xb8' | dd of=odd_header.qcow2 bs=1 seek=24 conv=notrunc status=none
compare_view odd_header.qcow2
cp c65536.qcow2 flagged.qcow2
printf '\x02' | dd of=flagged.qcow2 bs=1 seek=79 conv=notrunc status=none
compare_view flagged.qcow2

# --- compressed clusters ---
SMALL=220000
for cs in 4096 65536; do
  qemu-img convert -c -O qcow2 -o cluster_size=$cs -f raw src.raw "z$cs.qcow2"
  compare_view "z$cs.qcow2"
done
qemu-img convert -c -O qcow2 -o cluster_size=2M -f raw src.raw z2M.qcow2
BUDGET=$(( 5 * 1048576 )) SMALL=$(( 4 * 1048576 + 3 * 32768 + 4096 )) compare_view z2M.qcow2
qemu-img convert -c -O qcow2 -o compat=0.10 -f raw src.raw zv2.qcow2
compare_view zv2.qcow2
# Compressed writes mixed with plain ones and overwrites.
qemu-img create -q -f qcow2 zmix.qcow2 16M
qemu-io -c "write -c -P 0x12 0 64k" -c "write -c -P 0x34 128k 64k" -c "write -P 0x56 160k 4k" \
        -c "write -z 192k 64k" zmix.qcow2 >/dev/null
compare_view zmix.qcow2

# --- vmdk (streamOptimized needs three grains for decompression) ---
for sub in monolithicSparse streamOptimized; do
  qemu-img convert -O vmdk -o subformat=$sub -f raw src.raw "$sub.vmdk"
  compare_view "$sub.vmdk"
done
# The grain directory found through a stream footer (qemu-img does not write one).
python3 "$FOOTER" streamOptimized.vmdk footer.vmdk
compare_view footer.vmdk
qemu-img create -q -f vmdk -o zeroed_grain=on zg.vmdk 16M
writes zg.vmdk
compare_view zg.vmdk

unset SMALL

# --- raw, including a size that is not a whole number of sectors ---
cp src.raw plain.raw
compare_view plain.raw
head -c 1000 /dev/urandom >short.raw
compare_view short.raw

# --- chains ---
# Depth 2: overlay over a smaller and over a larger backing file.
qemu-img create -q -f qcow2 small.qcow2 8M
qemu-io -c "write -P 0x01 0 8M" small.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b small.qcow2 -F qcow2 over_small.qcow2 16M
qemu-io -c "write -P 0x02 1M 64k" -c "write -z 2M 1M" -c "write -P 0x03 9M 1M" over_small.qcow2 >/dev/null
compare_view over_small.qcow2
qemu-img create -q -f qcow2 large.qcow2 32M
qemu-io -c "write -P 0x04 0 32M" large.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b large.qcow2 -F qcow2 over_large.qcow2 16M
qemu-io -c "write -P 0x05 3M 5k" -c "discard 4M 1M" over_large.qcow2 >/dev/null
compare_view over_large.qcow2
# Depth 3 and 4 with mixed formats and cluster sizes, a shrinking middle, extended L2 and
# compressed layers.
qemu-img convert -O vmdk -o subformat=streamOptimized -f raw src.raw base.vmdk
qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.vmdk -F vmdk mid.qcow2 6M
qemu-io -c "write -P 0x06 0 1M" -c "write -z 1M 512k" -c "write -P 0x07 5M 1M" mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o extended_l2=on -b mid.qcow2 -F qcow2 top3.qcow2 20M
qemu-io -c "write -P 0x08 4k 2k" -c "write -z 300k 8k" -c "write -P 0x09 7M 3M" top3.qcow2 >/dev/null
SMALL=220000 compare_view top3.qcow2
qemu-img create -q -f qcow2 -b top3.qcow2 -F qcow2 top4.qcow2 24M
qemu-io -c "write -c -P 0x0a 0 64k" -c "write -P 0x0b 22M 64k" -c "write -z 7M 64k" top4.qcow2 >/dev/null
SMALL=220000 compare_view top4.qcow2
qemu-img create -q -f qcow2 -b plain.raw -F raw over_raw.qcow2 12M
qemu-io -c "write -P 0x0c 2M 1M" over_raw.qcow2 >/dev/null
compare_view over_raw.qcow2
qemu-img create -q -f qcow2 -b zg.vmdk -F vmdk over_vmdk.qcow2 16M
qemu-io -c "write -P 0x0d 0 4k" over_vmdk.qcow2 >/dev/null
compare_view over_vmdk.qcow2

finish
