#!/bin/bash
# Differential test: `instar commit` against `qemu-img commit` on copies of the same backing
# chain (same file names, separate directories), in every sandbox: same exit code, same stdout
# (progress redraws removed), same stderr with the program name normalised. After a success
# every file of the chain reads the same guest content in both copies (`qemu-img compare`),
# every qcow2 file of instar's copy is `qemu-img check` clean, an emptied top owns nothing in
# either copy, and a file qemu-img left untouched instar left untouched too. Refusals leave
# every file byte for byte as it was.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1

# The chain being built: its files, top first, all in src/.
CHAIN=()

reset_chain() { rm -rf src; mkdir -p src; CHAIN=(); }

# layer NAME FORMAT SIZE OPTIONS [QEMU-IO COMMANDS...]: creates NAME in src/ on top of the
# layers so far (chains are built bottom first; OPTIONS name the backing file) and runs the
# qemu-io commands on it.
layer() {
  local name="$1" fmt="$2" size="$3" opts="$4"
  shift 4
  (cd src && qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$name" "$size") || exit 1
  local io=() c
  for c in "$@"; do io+=(-c "$c"); done
  if [ ${#io[@]} -gt 0 ]; then
    (cd src && qemu-io -f "$fmt" "${io[@]}" "$name" >/dev/null) || exit 1
  fi
  CHAIN=("$name" "${CHAIN[@]}")
}

strip_progress() { sed -i 's/    ([0-9.]*\/100%)\r//g' "$1"; }

# Depth-0 ranges of a top, without host offsets: what the top itself owns.
owned() { qemu-img map -U --output=json "$1" 2>/dev/null | grep '"depth": 0' | grep '"present": true' | sed 's/, "offset": [0-9]*//'; }

# commit_pair ARGS...: qemu-img commit ARGS in q/, instar commit ARGS in i-SANDBOX/, each on a
# fresh copy of src/.
commit_pair() {
  local sandbox f what="commit $* [${CHAIN[*]}]"
  rm -rf q && cp -r src q
  (cd q && qemu-img commit "$@" >.out 2>.err; echo $? >.rc)
  strip_progress q/.out
  sed -i 's/^qemu-img: /PROG: /; s/Try .qemu-img --help./Try PROG --help/' q/.err
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    local i="i-$sandbox" ok=1
    rm -rf "$i" && cp -r src "$i"
    (cd "$i" && INSTAR_SANDBOX="$sandbox" "$INSTAR" commit "$@" >.out 2>.err; echo $? >.rc)
    strip_progress "$i/.out"
    sed -i 's/^instar: /PROG: /; s/Try .instar --help./Try PROG --help/' "$i/.err"
    if ! cmp -s q/.rc "$i/.rc"; then
      echo "MISMATCH ($sandbox) exit code for $what: $(cat q/.rc) vs $(cat "$i/.rc")" >&2; ok=0
    fi
    if ! cmp -s q/.out "$i/.out"; then
      echo "MISMATCH ($sandbox) stdout for $what" >&2; diff q/.out "$i/.out" >&2; ok=0
    fi
    if ! cmp -s q/.err "$i/.err"; then
      echo "MISMATCH ($sandbox) stderr for $what" >&2; diff q/.err "$i/.err" >&2; ok=0
    fi
    for f in "${CHAIN[@]}"; do
      if [ "$(cat q/.rc)" != 0 ] || cmp -s "src/$f" "q/$f"; then
        if ! cmp -s "src/$f" "$i/$f"; then
          echo "CHANGED ($sandbox) $f, which qemu-img left as it was, after $what" >&2; ok=0
        fi
        continue
      fi
      if ! qemu-img compare -U "q/$f" "$i/$f" >/dev/null 2>&1; then
        echo "MISMATCH ($sandbox) content of $f after $what" >&2; ok=0
      fi
      if [[ "$f" == *.qcow2 ]] && ! qemu-img check "$i/$f" >"$i/.check" 2>&1; then
        echo "NOT CLEAN ($sandbox) $f after $what:" >&2; cat "$i/.check" >&2; ok=0
      fi
    done
    if [ "$(owned "q/${CHAIN[0]}")" != "$(owned "$i/${CHAIN[0]}")" ]; then
      echo "MISMATCH ($sandbox) what the top owns after $what" >&2
      diff <(owned "q/${CHAIN[0]}") <(owned "$i/${CHAIN[0]}") >&2; ok=0
    fi
    [ "$ok" = 1 ] || fail "($sandbox) $what"
  done
}

# instar_refuses ARGS...: instar alone (qemu-img would go ahead or fail differently): a non-zero
# exit, one clear line, and every file of the chain byte for byte as it was.
instar_refuses() {
  local sandbox f what="commit $* [${CHAIN[*]}]"
  for sandbox in $SANDBOXES; do
    CHECKS=$((CHECKS + 1))
    local i="i-$sandbox" ok=1
    rm -rf "$i" && cp -r src "$i"
    (cd "$i" && INSTAR_SANDBOX="$sandbox" "$INSTAR" commit "$@" >.out 2>.err; echo $? >.rc)
    if [ "$(cat "$i/.rc")" != 1 ] || [ "$(wc -l <"$i/.err")" != 1 ] || ! grep -q '^instar: ' "$i/.err"; then
      echo "NOT REFUSED ($sandbox) $what: exit $(cat "$i/.rc")" >&2; cat "$i/.err" >&2; ok=0
    fi
    for f in "${CHAIN[@]}"; do
      if ! cmp -s "src/$f" "$i/$f"; then echo "CHANGED ($sandbox) $f after $what" >&2; ok=0; fi
    done
    [ "$ok" = 1 ] || fail "($sandbox) refusal: $what"
  done
}

B=backing_fmt=qcow2

# --- depth 2: data at the start, at the end, across a 1 MiB boundary; zero clusters ---
reset_chain
layer base.qcow2 qcow2 4M "" "write -P 0x11 0 4M"
layer top.qcow2 qcow2 4M "backing_file=base.qcow2,$B" "write -P 0x22 0 64k" \
  "write -P 0x23 $((4 * 1048576 - 65536)) 64k" "write -P 0x24 $((1048576 - 512)) 1k" \
  "write -z 2M 128k" "write -z -u 3M 64k"
commit_pair top.qcow2
commit_pair -q top.qcow2
commit_pair -d top.qcow2
commit_pair -p top.qcow2
commit_pair -p -q -t none -r 1M top.qcow2
commit_pair -f qcow2 top.qcow2

# --- empty and full overlays ---
reset_chain
layer base.qcow2 qcow2 1M "" "write -P 0x31 0 512k"
layer top.qcow2 qcow2 1M "backing_file=base.qcow2,$B"
commit_pair top.qcow2
reset_chain
layer base.qcow2 qcow2 2M "" "write -P 0x32 64k 64k"
layer top.qcow2 qcow2 2M "backing_file=base.qcow2,$B" "write -P 0x33 0 2M"
commit_pair top.qcow2

# --- discards in the overlay ---
reset_chain
layer base.qcow2 qcow2 1M "" "write -P 0x41 0 1M"
layer top.qcow2 qcow2 1M "backing_file=base.qcow2,$B" "write -P 0x42 0 512k" "discard 64k 128k"
commit_pair top.qcow2

# --- depth 3 and 4: into the immediate backing, and -b through intermediates ---
reset_chain
layer base.qcow2 qcow2 2M "" "write -P 0x51 0 2M"
layer mid.qcow2 qcow2 2M "backing_file=base.qcow2,$B" "write -P 0x52 256k 512k" "write -z 1M 64k"
layer top.qcow2 qcow2 2M "backing_file=mid.qcow2,$B" "write -P 0x53 512k 512k" "write -z 64k 64k"
commit_pair top.qcow2
commit_pair -b base.qcow2 top.qcow2
commit_pair -b mid.qcow2 top.qcow2
commit_pair -d -b base.qcow2 top.qcow2
reset_chain
layer l0.qcow2 qcow2 3M "" "write -P 0x61 0 3M"
layer l1.qcow2 qcow2 3M "backing_file=l0.qcow2,$B" "write -P 0x62 1M 64k"
layer l2.qcow2 qcow2 3M "backing_file=l1.qcow2,$B" "write -P 0x63 2M 64k" "write -z 0 64k"
layer l3.qcow2 qcow2 3M "backing_file=l2.qcow2,$B" "write -P 0x64 1536k 1M"
commit_pair -b l0.qcow2 l3.qcow2
commit_pair -b l1.qcow2 l3.qcow2
commit_pair l3.qcow2

# --- cluster sizes and refcount widths mixed between layers ---
for pair in "4096 65536" "65536 4096" "2097152 512" "512 2097152" "65536 2097152"; do
  set -- $pair
  reset_chain
  layer base.qcow2 qcow2 6M "cluster_size=$2,refcount_bits=1" "write -P 0x71 0 6M"
  layer top.qcow2 qcow2 6M "cluster_size=$1,refcount_bits=64,backing_file=base.qcow2,$B" \
    "write -P 0x72 4k 4k" "write -P 0x73 3M 512" "write -z 5M 64k" "write -P 0x74 $((6 * 1048576 - 512)) 512"
  commit_pair top.qcow2
done
for bits in 2 4 8 32; do
  reset_chain
  layer base.qcow2 qcow2 1M "refcount_bits=$bits" "write -P 0x75 0 1M"
  layer top.qcow2 qcow2 1M "refcount_bits=$bits,backing_file=base.qcow2,$B" "write -P 0x76 64k 256k"
  commit_pair top.qcow2
done

# --- a base smaller than the overlay is grown; over a longer backing file it reads zeros ---
reset_chain
layer base.qcow2 qcow2 1M "" "write -P 0x81 0 1M"
layer top.qcow2 qcow2 3M "backing_file=base.qcow2,$B" "write -P 0x82 2M 64k" "write -P 0x83 960k 128k"
commit_pair top.qcow2
reset_chain
layer root.qcow2 qcow2 4M "" "write -P 0x84 0 4M"
layer base.qcow2 qcow2 1M "backing_file=root.qcow2,$B" "write -P 0x85 0 64k"
layer top.qcow2 qcow2 3M "backing_file=base.qcow2,$B" "write -P 0x86 2M 64k"
commit_pair top.qcow2
reset_chain
layer base.qcow2 qcow2 1M "compat=0.10" "write -P 0x87 0 1M"
layer top.qcow2 qcow2 2M "backing_file=base.qcow2,$B" "write -P 0x88 1536k 64k" "write -z 0 64k"
commit_pair top.qcow2

# --- internal snapshots in the base (copy on write) and in the overlay (emptied by discards) ---
reset_chain
layer base.qcow2 qcow2 2M "" "write -P 0x91 0 2M"
qemu-img snapshot -c s1 src/base.qcow2
layer top.qcow2 qcow2 2M "backing_file=base.qcow2,$B" "write -P 0x92 0 1M" "write -z 1536k 64k"
qemu-img snapshot -c t1 src/top.qcow2
qemu-io -c "write -P 0x93 512k 64k" src/top.qcow2 >/dev/null
commit_pair top.qcow2

# --- compressed clusters in the overlay and in the base ---
reset_chain
layer base.qcow2 qcow2 1M "" "write -c -P 0x94 0 128k" "write -c -P 0x95 512k 64k"
layer top.qcow2 qcow2 1M "backing_file=base.qcow2,$B,cluster_size=4096" "write -c -P 0x96 0 64k" \
  "write -P 0x97 520k 4k"
commit_pair top.qcow2

# --- vmdk: vmdk over vmdk, qcow2 over vmdk, into a raw base; a vmdk base cannot grow ---
reset_chain
layer base.vmdk vmdk 2M "" "write -P 0xa1 0 2M"
layer top.vmdk vmdk 2M "backing_file=base.vmdk,backing_fmt=vmdk" "write -P 0xa2 64k 64k" "write -P 0xa3 1M 512k"
commit_pair top.vmdk
commit_pair -d top.vmdk
reset_chain
layer base.vmdk vmdk 2M "" "write -P 0xa4 0 1M"
layer top.qcow2 qcow2 2M "backing_file=base.vmdk,backing_fmt=vmdk" "write -P 0xa5 512k 1M" "write -z 0 64k"
commit_pair top.qcow2
reset_chain
layer base.vmdk vmdk 1M "" "write -P 0xa6 0 1M"
layer top.qcow2 qcow2 2M "backing_file=base.vmdk,backing_fmt=vmdk" "write -P 0xa7 1536k 64k"
commit_pair top.qcow2
reset_chain
layer base.raw raw 1M "" "write -P 0xa8 0 1M"
layer top.qcow2 qcow2 2M "backing_file=base.raw,backing_fmt=raw" "write -P 0xa9 512k 1M" "write -z 0 64k"
commit_pair top.qcow2

# --- qemu-img's refusals ---
reset_chain
layer base.qcow2 qcow2 1M "" "write -P 0xb1 0 64k"
layer top.qcow2 qcow2 1M "backing_file=base.qcow2,$B" "write -P 0xb2 0 64k"
commit_pair base.qcow2
commit_pair -f raw top.qcow2
commit_pair -f bogus top.qcow2
commit_pair -b nowhere.qcow2 top.qcow2
commit_pair -b top.qcow2 top.qcow2
commit_pair missing.qcow2
commit_pair -t bogus top.qcow2
commit_pair -r 1x top.qcow2
commit_pair -r 99999999999999999999 top.qcow2
commit_pair -r -1 top.qcow2
commit_pair
commit_pair top.qcow2 base.qcow2
commit_pair -x top.qcow2
commit_pair -b
commit_pair -T none top.qcow2
mv src/base.qcow2 src/gone.qcow2
CHAIN=(top.qcow2 gone.qcow2)
commit_pair top.qcow2
mv src/gone.qcow2 src/base.qcow2
CHAIN=(top.qcow2 base.qcow2)
# The top's corrupt bit: qemu-img opens it read/write even with -d and refuses.
printf '\x00\x00\x00\x00\x00\x00\x00\x02' | dd of=src/top.qcow2 bs=1 seek=72 conv=notrunc 2>/dev/null
commit_pair top.qcow2
commit_pair -d top.qcow2

# --- instar's own refusals: neither image is modified ---
reset_chain
layer base.qcow2 qcow2 1M "" "write -P 0xc1 0 64k"
layer top.qcow2 qcow2 1M "backing_file=base.qcow2,$B" "write -P 0xc2 0 64k"
# The base's corrupt bit (qemu-img 7.2 reopens the base read/write and writes into it anyway).
cp src/base.qcow2 src/base.orig
printf '\x00\x00\x00\x00\x00\x00\x00\x02' | dd of=src/base.qcow2 bs=1 seek=72 conv=notrunc 2>/dev/null
instar_refuses top.qcow2
cp src/base.orig src/base.qcow2
# A base whose L1 table points past the end of the file.
l1=$(od -An -t u8 --endian=big -j 40 -N 8 src/base.qcow2 | tr -d ' ')
printf '\x00\x00\x00\x00\x7f\x00\x00\x00' | dd of=src/base.qcow2 bs=1 seek="$l1" conv=notrunc 2>/dev/null
instar_refuses top.qcow2
cp src/base.orig src/base.qcow2
# An overlay whose L2 entry points past the end of the file.
l1=$(od -An -t u8 --endian=big -j 40 -N 8 src/top.qcow2 | tr -d ' ')
l2=$(( $(od -An -t u8 --endian=big -j "$l1" -N 8 src/top.qcow2 | tr -d ' ') & 0x00fffffffffffe00 ))
printf '\x80\x00\x00\x00\x7f\x00\x00\x00' | dd of=src/top.qcow2 bs=1 seek="$l2" conv=notrunc 2>/dev/null
instar_refuses top.qcow2
# A backing file outside the allowed directories (the top's own): refused before anything is
# opened for writing.
reset_chain
rm -rf outside && mkdir outside
(cd outside && qemu-img create -q -f qcow2 base.qcow2 1M && cp base.qcow2 base.orig)
layer top.qcow2 qcow2 1M "backing_file=../outside/base.qcow2,$B" "write -P 0xc3 0 64k"
instar_refuses top.qcow2
CHECKS=$((CHECKS + 1))
cmp -s outside/base.qcow2 outside/base.orig || fail "the base outside the allowlist was changed"

# --- a read-only base: qemu-img's message (as an unprivileged user; root writes anyway) ---
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
  reset_chain
  layer base.qcow2 qcow2 1M "" "write -P 0xd1 0 64k"
  layer top.qcow2 qcow2 1M "backing_file=base.qcow2,$B" "write -P 0xd2 0 64k"
  # Outside the test's own tree: instar canonicalises every backing path (the allowlist), which
  # an unprivileged user cannot do below an untraversable ancestor such as /root.
  ro="$(mktemp -d /tmp/instar-commit-ro.XXXXXX)" && cp -r src/. "$ro" && cp "$INSTAR" "$ro/instar"
  chown -R 65534:65534 "$ro" && chmod 755 "$ro" && chmod 444 "$ro/base.qcow2"
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  for sandbox in $SANDBOXES; do
    [ "$sandbox" = kvm ] && continue  # /dev/kvm is root's here
    CHECKS=$((CHECKS + 1))
    (cd "$ro" && as_nobody qemu-img commit top.qcow2) >/dev/null 2>"$WORK/q.err"; qrc=$?
    (cd "$ro" && as_nobody env INSTAR_SANDBOX="$sandbox" ./instar commit top.qcow2) >/dev/null 2>"$WORK/i.err"; irc=$?
    sed -i 's/^qemu-img: /PROG: /' "$WORK/q.err"; sed -i 's/^instar: /PROG: /' "$WORK/i.err"
    if [ "$qrc" != "$irc" ] || ! cmp -s "$WORK/q.err" "$WORK/i.err"; then
      echo "MISMATCH ($sandbox) read-only base: $qrc vs $irc" >&2; diff "$WORK/q.err" "$WORK/i.err" >&2
      fail "($sandbox) read-only base"
    fi
  done
  rm -rf "$ro"
fi

finish
