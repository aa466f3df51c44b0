#!/bin/bash
# Differential test: `instar rebase` against `qemu-img rebase` on two copies of the same
# directory of images (so relative backing names resolve alike), in every sandbox: same exit
# code, same stdout, same stderr with the program name normalised. After a success the two
# overlays are byte-identical for unsafe qcow2 rebases (qemu rewrites the header cluster, and
# so does instar), read the same guest content (`qemu-img compare`), report the same backing
# fields in `qemu-img info --output=json`, and instar's is `qemu-img check` clean. After a
# failure instar's overlay is byte-identical to what it was.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1
mkdir -p src q i
# The operator allows src/ (absolute backing names point there); nothing else outside the
# overlay's directory.
printf 'allow %s\n' "$WORK/src" >"$WORK/instar.conf"
export INSTAR_CONFIG="$WORK/instar.conf"

backing_fields() {  # IMAGE: the backing lines of qemu-img info's JSON
  qemu-img info --output=json "$1" 2>&1 | grep -E '"(backing-filename|backing-filename-format|full-backing-filename)"'
}

# rebase_pair [--bytes] ARGS...: `rebase ARGS` in q/ (qemu-img) and i/ (instar), both fresh
# copies of src/. The overlay is the last argument. --bytes: a success leaves both overlays
# byte-identical.
rebase_pair() {
  local bytes=0
  if [ "${1:-}" = "--bytes" ]; then bytes=1; shift; fi
  local overlay="${!#}" sandbox
  [ $# = 0 ] && overlay=""
  rm -rf q i && cp -a src q
  (cd q && qemu-img rebase "$@" >"$WORK/.q.out" 2>"$WORK/.q.err"; echo $? >"$WORK/.q.rc")
  sed -i 's/^qemu-img: /PROG: /; s/Try .qemu-img --help./Try PROG --help/' "$WORK/.q.err"
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    rm -rf i && cp -a src i
    (cd i && INSTAR_SANDBOX="$sandbox" "$INSTAR" rebase "$@" >"$WORK/.i.out" 2>"$WORK/.i.err"; echo $? >"$WORK/.i.rc")
    sed -i 's/^instar: /PROG: /; s/Try .instar --help./Try PROG --help/' "$WORK/.i.err"
    local ok=1 what="($sandbox) rebase $*"
    if ! cmp -s "$WORK/.q.rc" "$WORK/.i.rc"; then
      echo "MISMATCH exit code for $what: $(cat "$WORK/.q.rc") vs $(cat "$WORK/.i.rc")" >&2; ok=0
    fi
    if ! cmp -s "$WORK/.q.out" "$WORK/.i.out"; then
      echo "MISMATCH stdout for $what" >&2; diff "$WORK/.q.out" "$WORK/.i.out" | cat -A >&2; ok=0
    fi
    if ! cmp -s "$WORK/.q.err" "$WORK/.i.err"; then
      echo "MISMATCH stderr for $what" >&2; diff "$WORK/.q.err" "$WORK/.i.err" >&2; ok=0
    fi
    if [ "$ok" = 1 ] && [ -n "$overlay" ] && [ -f "i/$overlay" ]; then
      if [ "$(cat "$WORK/.i.rc")" != 0 ]; then
        if ! cmp -s "src/$overlay" "i/$overlay"; then
          echo "CHANGED after the refusal $what" >&2; ok=0
        fi
      elif [[ "$overlay" != *.raw ]]; then
        if [ "$(cd q && backing_fields "$overlay")" != "$(cd i && backing_fields "$overlay")" ]; then
          echo "MISMATCH backing fields after $what" >&2
          diff <(cd q && backing_fields "$overlay") <(cd i && backing_fields "$overlay") >&2; ok=0
        fi
        # Identical bytes say everything (and an unsafe rebase may leave a backing file that
        # does not exist, which check and compare would need).
        if [ "$bytes" = 1 ]; then
          if ! cmp "q/$overlay" "i/$overlay" >&2; then echo "MISMATCH bytes after $what" >&2; ok=0; fi
        else
          if ! (cd i && qemu-img check "$overlay" >"$WORK/.check" 2>&1); then
            echo "NOT CLEAN after $what:" >&2; head -5 "$WORK/.check" >&2; ok=0
          fi
          if ! (cd q && qemu-img compare -U "$overlay" "../i/$overlay" >/dev/null 2>&1); then
            echo "MISMATCH content after $what" >&2; ok=0
          fi
        fi
      fi
    fi
    [ "$ok" = 1 ] || fail "$what"
  done
}

fill() {  # IMAGE PATTERN OFFSETS...: 64 KiB of PATTERN at each offset
  local image="$1" pattern="$2" cmds=() o
  shift 2
  for o in "$@"; do cmds+=(-c "write -P $pattern $o 64k"); done
  qemu-io "${cmds[@]}" "$image" >/dev/null
}

# --- arguments (nothing to disagree about in the images) ---
qemu-img create -q -f qcow2 src/base.qcow2 4M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/ov.qcow2 4M
qemu-img create -q -f raw src/nb.raw 8M
rebase_pair ov.qcow2
rebase_pair
rebase_pair -u
rebase_pair -u -b nb.raw -F raw ov.qcow2 extra
rebase_pair -b
rebase_pair --bogus -u ov.qcow2
rebase_pair -u -b nb.raw -F raw missing.qcow2
rebase_pair -u -b nb.raw -F raw -f foo ov.qcow2
rebase_pair -u -b nb.raw -F raw -t bogus ov.qcow2
rebase_pair -u -b nb.raw -F raw -T bogus ov.qcow2
rebase_pair -u -b nb.raw ov.qcow2
rebase_pair -u -b nb.raw -F bogus ov.qcow2
rebase_pair -u -b nb.raw -F raw -f raw ov.qcow2
rebase_pair -u -b nb.raw -F raw -f vmdk ov.qcow2

# --- unsafe qcow2: the header cluster, byte for byte ---
rebase_pair --bytes -u -b nb.raw -F raw ov.qcow2
rebase_pair --bytes -u -b nb.raw -F raw -t none -T writeback -q ov.qcow2
rebase_pair --bytes -u -b nb.raw -F raw -p ov.qcow2
rebase_pair --bytes -u -b "" ov.qcow2
rebase_pair --bytes -u -b "" -F raw ov.qcow2
rebase_pair --bytes -u ov.qcow2
rebase_pair --bytes -u -F raw ov.qcow2
rebase_pair --bytes -u -b missing.qcow2 -F qcow2 ov.qcow2
rebase_pair --bytes -u -b "$WORK/src/nb.raw" -F raw ov.qcow2
rebase_pair --bytes -u -b ../elsewhere/nb.raw -F raw ov.qcow2
rebase_pair --bytes -u -b nb.raw -F vpc ov.qcow2
rebase_pair --bytes -U -u -b nb.raw -F raw ov.qcow2
rebase_pair --bytes -u -b "$(printf 'n%.0s' $(seq 1023))" -F raw ov.qcow2
rebase_pair --bytes -u -b "$(printf 'n%.0s' $(seq 1024))" -F raw ov.qcow2
rm src/ov.qcow2

for cluster in 512 1024 4096 8192 65536 2M; do
  qemu-img create -q -f qcow2 -o cluster_size=$cluster -b base.qcow2 -F qcow2 src/c.qcow2 4M
  fill src/c.qcow2 0x5a 0 3M
  rebase_pair --bytes -u -b nb.raw -F raw c.qcow2
  rebase_pair --bytes -u -b "" c.qcow2
done
# 512-byte clusters: 112 header bytes, 16 of backing format, 8 of end marker leave 376.
qemu-img create -q -f qcow2 -o cluster_size=512 src/small.qcow2 1M
rebase_pair --bytes -u -b "$(printf 's%.0s' $(seq 376))" -F raw small.qcow2
rebase_pair --bytes -u -b "$(printf 's%.0s' $(seq 377))" -F raw small.qcow2
rm src/small.qcow2 src/c.qcow2

for bits in 1 2 4 8 16 32 64; do
  qemu-img create -q -f qcow2 -o refcount_bits=$bits -b base.qcow2 -F qcow2 src/r.qcow2 4M
  fill src/r.qcow2 0x6b 64k
  rebase_pair --bytes -u -b nb.raw -F raw r.qcow2
done
rm src/r.qcow2

qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 src/v2.qcow2 4M
rebase_pair --bytes -u -b nb.raw -F raw v2.qcow2
rebase_pair --bytes -u -b "" v2.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on,compression_type=zstd src/feat.qcow2 4M
rebase_pair --bytes -u -b nb.raw -F raw feat.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/snap.qcow2 4M
fill src/snap.qcow2 0x11 0
qemu-img snapshot -c one src/snap.qcow2
fill src/snap.qcow2 0x22 0 1M
rebase_pair --bytes -u -b nb.raw -F raw snap.qcow2
rm src/v2.qcow2 src/feat.qcow2 src/snap.qcow2

# A raw overlay stores no backing file.
rebase_pair -u -b nb.raw -F raw nb.raw
rebase_pair -u -b nb.raw -F raw -f raw nb.raw

# Refusals: the overlay is untouched.
qemu-img create -q -f qcow2 src/corrupt.qcow2 1M
printf '\x00\x00\x00\x00\x00\x00\x00\x02' | dd of=src/corrupt.qcow2 bs=1 seek=72 conv=notrunc status=none
rebase_pair -u -b nb.raw -F raw corrupt.qcow2
printf 'QFI\xfb\x00\x00\x00\x09' > src/bad.qcow2
rebase_pair -u -b nb.raw -F raw bad.qcow2
rm src/corrupt.qcow2 src/bad.qcow2

# --- safe rebase: what differs between the chains is copied first ---
# base (4 MiB) <- ov (4 MiB); candidates: larger, smaller, unrelated, raw, vmdk.
qemu-img create -q -f qcow2 src/base.qcow2 4M
fill src/base.qcow2 0x11 0 1M 2M 3M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/ov.qcow2 4M
fill src/ov.qcow2 0x22 1M
qemu-img create -q -f qcow2 src/larger.qcow2 8M
fill src/larger.qcow2 0x11 0 1M
fill src/larger.qcow2 0x33 3M 5M
qemu-img create -q -f qcow2 src/smaller.qcow2 2M
fill src/smaller.qcow2 0x11 0
qemu-img create -q -f qcow2 src/unrelated.qcow2 4M
fill src/unrelated.qcow2 0x44 0 64k 2M 3M
qemu-img convert -O raw src/unrelated.qcow2 src/unrelated.raw
qemu-img create -q -f vmdk src/unrelated.vmdk 4M
fill src/unrelated.vmdk 0x55 0 3M
mkdir -p src/sub
qemu-img create -q -f qcow2 src/sub/deep.qcow2 4M
fill src/sub/deep.qcow2 0x66 2M
for target in larger.qcow2:qcow2 smaller.qcow2:qcow2 unrelated.qcow2:qcow2 unrelated.raw:raw \
              unrelated.vmdk:vmdk sub/deep.qcow2:qcow2 base.qcow2:qcow2; do
  rebase_pair -b "${target%%:*}" -F "${target##*:}" ov.qcow2
done
rebase_pair -b "$WORK/src/larger.qcow2" -F qcow2 ov.qcow2
rebase_pair -b "" ov.qcow2
rebase_pair -p -b smaller.qcow2 -F qcow2 -q ov.qcow2
rebase_pair -b ov.qcow2 -F qcow2 ov.qcow2
# The new backing file is opened with -F (a raw file named as qcow2 fails).
rebase_pair -b unrelated.raw -F qcow2 ov.qcow2
rebase_pair -b missing.qcow2 -F qcow2 ov.qcow2
rebase_pair -b sub/missing.qcow2 -F qcow2 ov.qcow2
rebase_pair -b larger.qcow2 ov.qcow2
rebase_pair -b larger.qcow2 -F bogus ov.qcow2
# A chain of three below the overlay, rebased onto its middle and onto nothing.
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/mid.qcow2 4M
fill src/mid.qcow2 0x77 2M
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 src/top.qcow2 4M
fill src/top.qcow2 0x88 3M
rebase_pair -b base.qcow2 -F qcow2 top.qcow2
rebase_pair -b "" top.qcow2
rebase_pair -b unrelated.qcow2 -F qcow2 top.qcow2
# An old backing file that does not open: safe mode opens the whole chain first.
qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 -u src/orphan.qcow2 4M
rebase_pair -b larger.qcow2 -F qcow2 orphan.qcow2
qemu-img create -q -f qcow2 -b orphan.qcow2 -F qcow2 -u src/above_orphan.qcow2 4M
rebase_pair -b larger.qcow2 -F qcow2 above_orphan.qcow2
rebase_pair -b above_orphan.qcow2 -F qcow2 ov.qcow2
rm src/orphan.qcow2 src/above_orphan.qcow2 src/mid.qcow2 src/top.qcow2

# Cluster sizes, refcount widths, version 2, snapshots (copy on write away from them).
for cluster in 512 4096 65536 2M; do
  qemu-img create -q -f qcow2 -o cluster_size=$cluster -b base.qcow2 -F qcow2 src/c.qcow2 4M
  fill src/c.qcow2 0x5a 64k 3M
  rebase_pair -b unrelated.qcow2 -F qcow2 c.qcow2
  rebase_pair -b "" c.qcow2
done
for bits in 1 2 8 32 64; do
  qemu-img create -q -f qcow2 -o refcount_bits=$bits -b base.qcow2 -F qcow2 src/r.qcow2 4M
  fill src/r.qcow2 0x6b 64k
  rebase_pair -b larger.qcow2 -F qcow2 r.qcow2
done
qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 src/v2.qcow2 4M
fill src/v2.qcow2 0x6c 1M
rebase_pair -b unrelated.qcow2 -F qcow2 v2.qcow2
rebase_pair -b "" v2.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/snap.qcow2 4M
fill src/snap.qcow2 0x13 0 3M
qemu-img snapshot -c one src/snap.qcow2
fill src/snap.qcow2 0x14 0
rebase_pair -b unrelated.qcow2 -F qcow2 snap.qcow2
rm src/c.qcow2 src/r.qcow2 src/v2.qcow2 src/snap.qcow2

# Bad chains: the overlay is untouched (instar refuses what it will not open; qemu-img
# follows any path, so only instar runs here).
refused() {  # DESCRIPTION ARGS...: instar fails and leaves the overlay byte-identical
  local what="$1" sandbox
  shift
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    rm -rf i && cp -a src i
    if (cd i && INSTAR_SANDBOX="$sandbox" "$INSTAR" rebase "$@" >"$WORK/.i.out" 2>"$WORK/.i.err"); then
      fail "($sandbox) $what: instar rebase $* succeeded"
    elif ! cmp -s "src/${!#}" "i/${!#}"; then
      fail "($sandbox) $what: overlay changed"
    elif [ "$(wc -l <"$WORK/.i.err")" != 1 ]; then
      fail "($sandbox) $what: not one line of error"; cat "$WORK/.i.err" >&2
    fi
  done
}
mkdir -p outside && qemu-img create -q -f qcow2 outside/far.qcow2 4M
qemu-img create -q -f qcow2 -b "$WORK/outside/far.qcow2" -F qcow2 src/far_ov.qcow2 4M
refused "old backing outside the allowlist" -b larger.qcow2 -F qcow2 far_ov.qcow2
refused "new backing outside the allowlist" -b ../outside/far.qcow2 -F qcow2 ov.qcow2
qemu-img create -q -f qcow2 -b cyc_b.qcow2 -F qcow2 -u src/cyc_a.qcow2 4M
qemu-img create -q -f qcow2 -b cyc_a.qcow2 -F qcow2 -u src/cyc_b.qcow2 4M
qemu-img create -q -f qcow2 -b cyc_a.qcow2 -F qcow2 -u src/cyc_ov.qcow2 4M
refused "old chain with a cycle" -b larger.qcow2 -F qcow2 cyc_ov.qcow2
refused "new chain with a cycle" -b cyc_a.qcow2 -F qcow2 ov.qcow2
prev=base.qcow2
for n in $(seq 1 17); do
  qemu-img create -q -f qcow2 -b "$prev" -F qcow2 -u "src/d$n.qcow2" 4M
  prev="d$n.qcow2"
done
refused "old chain deeper than 16" -b larger.qcow2 -F qcow2 d17.qcow2
refused "new chain deeper than 16" -b d17.qcow2 -F qcow2 ov.qcow2
cp src/ov.qcow2 src/corrupt_ov.qcow2
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of=src/corrupt_ov.qcow2 bs=1 seek=$((0x30000)) conv=notrunc status=none
refused "corrupt overlay L1" -b larger.qcow2 -F qcow2 corrupt_ov.qcow2
rm -rf outside src/far_ov.qcow2 src/cyc_*.qcow2 src/d*.qcow2 src/corrupt_ov.qcow2

# --- VMDK: qemu-img 7.2 refuses ("Operation not supported"); instar rewrites the descriptor's
# parent lines as qemu-img create writes them, so qemu then reads the new chain. ---
qemu-img create -q -f vmdk src/vbase.vmdk 4M
qemu-img create -q -f vmdk -b vbase.vmdk -F vmdk src/vov.vmdk 4M
fill src/vov.vmdk 0x42 0 2M
qemu-img create -q -f vmdk src/vnew.vmdk 4M
fill src/vnew.vmdk 0x24 1M 3M
# vmdk_unsafe ARGS...: instar succeeds; the overlay reads as its own data over the new backing
# (qemu-img's view with -b given explicitly) and is check clean.
vmdk_unsafe() {
  local sandbox
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    rm -rf i && cp -a src i
    local what="($sandbox) vmdk rebase $*" ok=1
    if ! (cd i && INSTAR_SANDBOX="$sandbox" "$INSTAR" rebase "$@" >"$WORK/.i.out" 2>&1); then
      echo "FAILED $what:" >&2; cat "$WORK/.i.out" >&2; ok=0
    else
      (cd i && qemu-img check vov.vmdk >"$WORK/.check" 2>&1) || { echo "NOT CLEAN after $what" >&2; ok=0; }
      local parent_cid expected_cid
      parent_cid=$(strings i/vov.vmdk | sed -n 's/^parentCID=//p' | head -1)
      expected_cid=ffffffff
      [[ " $* " == *" -b vnew.vmdk "* ]] && expected_cid=$(strings i/vnew.vmdk | sed -n 's/^CID=//p' | head -1)
      [ "$parent_cid" = "$expected_cid" ] || { echo "parentCID $parent_cid, expected $expected_cid after $what" >&2; ok=0; }
    fi
    [ "$ok" = 1 ] || fail "$what"
  done
}
vmdk_unsafe -u -b vnew.vmdk -F vmdk vov.vmdk
vmdk_unsafe -u -b "" vov.vmdk
vmdk_unsafe -b vnew.vmdk -F vmdk vov.vmdk
vmdk_unsafe -b "" vov.vmdk
# qemu's vmdk driver opens every backing file as a vmdk: instar refuses anything else.
rebase_vmdk_refusal() {
  rm -rf i && cp -a src i
  CHECKS=$((CHECKS + 1))
  if (cd i && "$INSTAR" rebase "$@" 2>"$WORK/.i.err") || ! cmp -s src/vov.vmdk i/vov.vmdk; then
    fail "vmdk rebase $* should be refused, overlay untouched"
  fi
}
rebase_vmdk_refusal -u -b nb.raw -F raw vov.vmdk
# A safe rebase keeps what the guest sees.
for args in "-b vnew.vmdk -F vmdk" "-b \"\""; do
  rm -rf i && cp -a src i
  eval "(cd i && \"\$INSTAR\" rebase $args vov.vmdk)"
  check "vmdk safe rebase $args keeps the content" qemu-img compare -q src/vov.vmdk i/vov.vmdk
done
# After the rebase qemu reads the overlay's data over the new backing file.
rm -rf i && cp -a src i
(cd i && "$INSTAR" rebase -u -b vnew.vmdk -F vmdk vov.vmdk) &&
  (cd i && qemu-img create -q -f vmdk -b vnew.vmdk -F vmdk expect.vmdk 4M && fill expect.vmdk 0x42 0 2M)
check "vmdk overlay reads over its new backing" qemu-img compare -q i/vov.vmdk i/expect.vmdk
check "vmdk backing name" bash -c "cd i && qemu-img info vov.vmdk | grep -qx 'backing file: vnew.vmdk'"

finish
