#!/bin/bash
# Differential test: `instar resize` against `qemu-img resize` on two copies of the same image
# (same file name, separate directories): same exit code, same stdout, same stderr with the
# program name normalised; after a success `qemu-img compare` finds the same guest content,
# `qemu-img check` finds instar's copy clean and both report the same virtual size.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1
mkdir -p src q i

# resize_pair IMAGE ARGS...: ARGS with the literal word IMG standing for the image's name.
# Files listed in EXTRA (backing files) are copied beside the image.
EXTRA=()
resize_pair() {
  local image="$1"
  shift
  CHECKS=$((CHECKS + 1))
  local name args=() a
  name="$(basename "$image")"
  for a in "$@"; do [ "$a" = IMG ] && args+=("$name") || args+=("$a"); done
  rm -rf q/* i/*
  [ -e "$image" ] && cp "$image" "q/$name" && cp "$image" "i/$name"
  for a in "${EXTRA[@]}"; do cp "$a" q/ && cp "$a" i/; done
  (cd q && qemu-img resize "${args[@]}" >.out 2>.err; echo $? >.rc)
  (cd i && "$INSTAR" resize "${args[@]}" >.out 2>.err; echo $? >.rc)
  sed -i 's/^qemu-img: /PROG: /; s/Try .qemu-img --help./Try PROG --help/' q/.err
  sed -i 's/^instar: /PROG: /; s/Try .instar --help./Try PROG --help/' i/.err
  local ok=1 what="resize ${args[*]} ($image)"
  if ! cmp -s q/.rc i/.rc; then echo "MISMATCH exit code for $what: $(cat q/.rc) vs $(cat i/.rc)" >&2; ok=0; fi
  if ! cmp -s q/.out i/.out; then echo "MISMATCH stdout for $what" >&2; diff q/.out i/.out >&2; ok=0; fi
  if ! cmp -s q/.err i/.err; then echo "MISMATCH stderr for $what" >&2; diff q/.err i/.err >&2; ok=0; fi
  if [ "$ok" = 1 ] && [ "$(cat q/.rc)" = 0 ] && [ -e "i/$name" ]; then
    local fmt=()
    case "$name" in *.raw) fmt=(-f raw) ;; esac
    if ! qemu-img compare "${fmt[@]}" "${fmt[@]/#-f/-F}" "q/$name" "i/$name" >/dev/null 2>&1; then
      echo "MISMATCH content for $what" >&2; ok=0
    fi
    local qs is
    qs=$(qemu-img info "${fmt[@]}" --output=json "q/$name" | grep '"virtual-size"')
    is=$(qemu-img info "${fmt[@]}" --output=json "i/$name" | grep '"virtual-size"')
    if [ "$qs" != "$is" ]; then echo "MISMATCH virtual size for $what: $qs vs $is" >&2; ok=0; fi
    if [[ "$name" != *.raw ]] && ! qemu-img check "i/$name" >i/.check 2>&1; then
      echo "NOT CLEAN after $what:" >&2; cat i/.check >&2; ok=0
    fi
    # A shrink cuts the file where qemu-img cuts it.
    if [[ " ${args[*]} " == *" --shrink "* ]] && [ "$(stat -c %s "q/$name")" != "$(stat -c %s "i/$name")" ]; then
      echo "MISMATCH file size after $what: $(stat -c %s "q/$name") vs $(stat -c %s "i/$name")" >&2; ok=0
    fi
  fi
  [ "$ok" = 1 ] || fail "$what"
}

# Images: data at the start, at the last cluster, and around a 1 MiB boundary.
make_qcow2() {  # NAME SIZE OPTIONS
  qemu-img create -q -f qcow2 -o "$3" "src/$1" "$2"
  qemu-io -c "write -P 0x11 0 64k" -c "write -P 0x22 $(( $2 - 65536 )) 64k" \
          -c "write -P 0x33 $(( 1048576 - 512 )) 1k" "src/$1" >/dev/null
}

# --- arguments and sizes (no image needed to disagree about) ---
qemu-img create -q -f raw src/plain.raw 1M
for s in 2x abc "" 5M5 "5M " 1e3 1.5 .5k 16E 99999999999999999999 99999999999999999999x \
         "+" "--5" 1..5k 0x k 1.5e3k 0x1.5M 0x1M +0x2k -0 +0 8E 9E 18446744073709551615 \
         9223372036854775807 9223372035781033985 1.5e; do
  resize_pair src/plain.raw -f raw --shrink IMG "$s"
done
resize_pair src/plain.raw IMG
resize_pair src/plain.raw
resize_pair src/plain.raw IMG 1 2
resize_pair src/plain.raw --bogus IMG 2M
resize_pair src/plain.raw -f IMG 2M
resize_pair src/plain.raw -f foo IMG 2M
resize_pair src/plain.raw --preallocation=bogus IMG 2x
resize_pair src/plain.raw IMG 2M -q
resize_pair src/missing.raw IMG 2M
resize_pair src/missing.raw IMG 2x

# --- raw ---
printf 'abc' > src/tiny.raw
for args in "IMG 2M" "-f raw IMG 2M" "-f raw IMG +1000" "-f raw IMG -- -512" \
            "-f raw --shrink IMG -- -512" "-f raw --shrink IMG 1000" "-f raw -q IMG 3M" \
            "-f raw --preallocation=metadata IMG 3M" "-f raw --preallocation=falloc IMG 3M" \
            "-f raw --preallocation=full IMG +1M" "-f raw --preallocation=full IMG 1M" \
            "-f raw IMG 1M" "-f raw --shrink --preallocation=full IMG 512k"; do
  # shellcheck disable=SC2086
  resize_pair src/plain.raw $args
done
resize_pair src/tiny.raw -f raw IMG +512
resize_pair src/tiny.raw -f raw --shrink IMG -- -1

# --- qcow2 grow and shrink over cluster sizes, refcount widths, versions ---
n=0
for cs in 512 4096 65536 2097152; do
  for rb in 1 16 64; do
    for compat in 1.1 0.10; do
      [ "$compat" = 0.10 ] && [ "$rb" != 16 ] && continue
      n=$((n + 1))
      img="src/c${cs}_r${rb}_v${compat}.qcow2"
      make_qcow2 "$(basename "$img")" $((8 << 20)) "cluster_size=$cs,refcount_bits=$rb,compat=$compat"
      resize_pair "$img" IMG 1G
      resize_pair "$img" IMG +3T
      resize_pair "$img" IMG 12345678
      resize_pair "$img" IMG 1M
      resize_pair "$img" --shrink IMG 1M
      resize_pair "$img" --shrink IMG 1047552
      resize_pair "$img" --shrink IMG -- -7M
      resize_pair "$img" -q IMG +0
      resize_pair "$img" -q IMG 8M
    done
  done
done
# Growth that needs a much larger refcount table (small clusters, wide refcounts).
make_qcow2 bigtable.qcow2 $((64 << 20)) cluster_size=512,refcount_bits=64
resize_pair src/bigtable.qcow2 IMG 8T
resize_pair src/bigtable.qcow2 IMG 1P
resize_pair src/bigtable.qcow2 IMG 1E
resize_pair src/bigtable.qcow2 IMG 9223372036854775807
# qcow2 preallocation: host clusters for the whole new range.
for opts in cluster_size=65536 cluster_size=512,refcount_bits=64 cluster_size=2097152,refcount_bits=1 \
            cluster_size=65536,extended_l2=on; do
  make_qcow2 pre.qcow2 1000448 "$opts"
  for mode in metadata falloc full; do
    resize_pair src/pre.qcow2 --preallocation=$mode IMG 9M
  done
done
# Many L2 tables and refcount blocks, and a refcount table that has to move, over and over.
make_qcow2 pre.qcow2 1000448 cluster_size=512,refcount_bits=64
resize_pair src/pre.qcow2 --preallocation=metadata IMG 40M
make_qcow2 pre.qcow2 1000448 cluster_size=65536
resize_pair src/pre.qcow2 --preallocation=metadata IMG 1200M
qemu-img snapshot -c s1 src/pre.qcow2
resize_pair src/pre.qcow2 --preallocation=falloc IMG +3M

# qcow2 refusals.
make_qcow2 p.qcow2 $((8 << 20)) cluster_size=65536
resize_pair src/p.qcow2 --preallocation=metadata --shrink IMG 1M
resize_pair src/p.qcow2 IMG 1000
resize_pair src/p.qcow2 --shrink IMG 1000
resize_pair src/p.qcow2 -f raw IMG 16M
resize_pair src/plain.raw -f qcow2 IMG 16M
cp src/p.qcow2 src/corrupt.qcow2
printf '\x02' | dd of=src/corrupt.qcow2 bs=1 seek=79 conv=notrunc 2>/dev/null
resize_pair src/corrupt.qcow2 IMG +1M

# Snapshots: v3 grows and shrinks, v2 refuses.
make_qcow2 snap3.qcow2 $((8 << 20)) cluster_size=4096
qemu-img snapshot -c s1 src/snap3.qcow2
qemu-io -c "write -P 0x44 0 8k" -c "write -P 0x55 7M 8k" src/snap3.qcow2 >/dev/null
resize_pair src/snap3.qcow2 IMG 2G
resize_pair src/snap3.qcow2 --shrink IMG 6M
resize_pair src/snap3.qcow2 --shrink IMG 2M
# Extended L2 entries, zero clusters, and compressed clusters (several per host cluster).
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=65536 src/ext.qcow2 64M
qemu-io -c "write -P 1 0 1M" -c "write -P 2 40M 100k" -c "write -z 50M 1M" -c "write -P 3 63M 1M" \
  src/ext.qcow2 >/dev/null
qemu-img convert -c -O qcow2 src/ext.qcow2 src/comp.qcow2
for f in src/ext.qcow2 src/comp.qcow2; do
  resize_pair "$f" --shrink IMG 40100k
  resize_pair "$f" --shrink IMG 20M
  resize_pair "$f" IMG 3G
done

# Snapshot sharing every table: the new end cuts through a shared L2 table.
for opts in cluster_size=512,refcount_bits=64 cluster_size=2048,refcount_bits=8; do
  qemu-img create -q -f qcow2 -o "$opts" src/shared.qcow2 8M
  qemu-io -c "write -P 0x66 0 8M" src/shared.qcow2 >/dev/null
  qemu-img snapshot -c s1 src/shared.qcow2
  qemu-io -c "write -P 0x77 0 4k" src/shared.qcow2 >/dev/null
  resize_pair src/shared.qcow2 --shrink IMG 1000k
  resize_pair src/shared.qcow2 --shrink IMG 3M
done
make_qcow2 snap2.qcow2 $((8 << 20)) compat=0.10
qemu-img snapshot -c s1 src/snap2.qcow2
resize_pair src/snap2.qcow2 IMG 16M
resize_pair src/snap2.qcow2 IMG 1000
resize_pair src/snap2.qcow2 IMG 16777217

# Overlays: the backing file is opened (and sized) too; missing, it fails the same way.
qemu-img create -q -f qcow2 src/base.qcow2 8M
qemu-io -c "write -P 0x88 0 8M" src/base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src/over.qcow2
qemu-io -c "write -P 0x99 1M 1M" src/over.qcow2 >/dev/null
EXTRA=(src/base.qcow2)
resize_pair src/over.qcow2 IMG +1M
resize_pair src/over.qcow2 --shrink IMG 3M
resize_pair src/over.qcow2 --shrink IMG 1000k
# Shorter than its backing file: the new range reads as zeros, not as the backing file.
for opts in cluster_size=65536 cluster_size=4096,refcount_bits=1 extended_l2=on compat=0.10; do
  qemu-img create -q -f qcow2 -o "$opts" -b base.qcow2 -F qcow2 src/short.qcow2 4M
  qemu-io -c "write -P 0xaa 1M 64k" src/short.qcow2 >/dev/null
  resize_pair src/short.qcow2 IMG 6M
  resize_pair src/short.qcow2 IMG 200M
done
EXTRA=()
resize_pair src/over.qcow2 IMG +1M
resize_pair src/over.qcow2 --shrink IMG 3M
resize_pair src/over.qcow2 IMG 2x

# Dirty images (lazy refcounts, left dirty by a killed writer, or the bit alone): qemu-img
# repairs them as check -r all would, printing the findings on stderr, then resizes.
for opts in cluster_size=65536 cluster_size=4096,refcount_bits=1; do
  qemu-img create -q -f qcow2 -o "lazy_refcounts=on,$opts" src/dirty.qcow2 64M
  (qemu-io -c "write -P 1 0 1M" -c "write -P 2 10M 64k" -c "write -P 3 63M 1M" -c abort \
    src/dirty.qcow2) >/dev/null 2>&1
  [ "$(od -An -tx1 -j79 -N1 src/dirty.qcow2 | tr -d ' ')" = 01 ] || fail "dirty image setup"
  resize_pair src/dirty.qcow2 IMG 128M
  resize_pair src/dirty.qcow2 --shrink IMG 12M
  resize_pair src/dirty.qcow2 IMG 10G
done
qemu-img create -q -f qcow2 -o lazy_refcounts=on src/dirtybit.qcow2 64M
qemu-io -c "write -P 1 0 1M" src/dirtybit.qcow2 >/dev/null
printf '\x01' | dd of=src/dirtybit.qcow2 bs=1 seek=79 conv=notrunc status=none
resize_pair src/dirtybit.qcow2 IMG 100M
for f in q/*.qcow2 i/*.qcow2; do
  [ "$(od -An -tx1 -j79 -N1 "$f" | tr -d ' ')" = 00 ] || fail "$f left dirty"
done

# Encrypted images: qemu-img needs the secret (--object, which instar refuses) to open them.
qemu-img create -q -f qcow2 --object secret,id=s0,data=abc \
  -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 src/luks.qcow2 16M
qemu-img create -q -f qcow2 --object secret,id=s0,data=abc -o encryption=on,encrypt.key-secret=s0 \
  src/aes.qcow2 16M 2>/dev/null
qemu-img create -q -f luks --object secret,id=s0,data=abc -o key-secret=s0,iter-time=10 \
  src/plain.luks 16M
resize_pair src/luks.qcow2 IMG 32M
resize_pair src/aes.qcow2 IMG 32M
resize_pair src/plain.luks IMG 32M
resize_pair src/luks.qcow2 --shrink IMG 1M
# Headers qemu refuses at open: an unknown encryption method, an extension past the cluster.
qemu-img create -q -f qcow2 src/crypt-odd.qcow2 16M
printf '\x00\x00\x80\x00' | dd of=src/crypt-odd.qcow2 bs=1 seek=32 conv=notrunc status=none
qemu-img create -q -f qcow2 src/ext-huge.qcow2 16M
printf '\x12\x34\x56\x78\xff\xff\xff\xff' | dd of=src/ext-huge.qcow2 bs=1 seek=112 conv=notrunc \
  status=none
resize_pair src/crypt-odd.qcow2 IMG 32M
resize_pair src/ext-huge.qcow2 IMG 32M

# vmdk: qemu-img refuses every resize; instar refuses the same way except growing
# monolithicSparse and twoGbMaxExtentSparse, checked below against a raw copy that qemu-img
# resized.
qemu-img create -q -f vmdk src/d.vmdk 64M
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse src/split.vmdk 3G
qemu-img create -q -f vmdk -o subformat=monolithicFlat src/flat.vmdk 64M
qemu-img create -q -f vmdk -o subformat=streamOptimized src/stream.vmdk 64M
resize_pair src/d.vmdk --shrink IMG 32M
resize_pair src/d.vmdk IMG 9223372036854775807
resize_pair src/d.vmdk IMG 1000
resize_pair src/d.vmdk IMG 64M
resize_pair src/d.vmdk --preallocation=full IMG 1000
resize_pair src/d.vmdk --preallocation=full IMG 128M
resize_pair src/stream.vmdk IMG 128M
cp src/split*.vmdk src/flat*.vmdk q/ && cp src/split*.vmdk src/flat*.vmdk i/
for args in "flat.vmdk 6G" "flat.vmdk 1G" "split.vmdk 1G" "--shrink split.vmdk 1G" \
  "--shrink flat.vmdk 1G" "--preallocation=full split.vmdk 6G" "split.vmdk 3G"; do
  CHECKS=$((CHECKS + 1))
  # shellcheck disable=SC2086
  qr=$(cd q && qemu-img resize $args 2>&1; echo "rc=$?")
  # shellcheck disable=SC2086
  ir=$(cd i && "$INSTAR" resize $args 2>&1; echo "rc=$?")
  [ "${qr//qemu-img/PROG}" = "${ir//instar/PROG}" ] || fail "resize $args: '$qr' vs '$ir'"
done
for f in q/split* i/split*; do cmp -s "$f" "src/${f#*/}" || fail "refused resize changed $f"; done

vsize() {
  qemu-img info --output=json "$1" | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p' | head -1
}

# grown_like_raw IMAGE RAW WHAT: IMAGE is check-clean, reads as RAW and takes a write at its
# new end.
grown_like_raw() {
  local image="$1" raw="$2" what="$3" out end
  qemu-img check "$image" >/dev/null 2>&1 || fail "$what: check"
  qemu-img compare -F raw "$image" "$raw" >/dev/null 2>&1 || fail "$what: content"
  end=$(vsize "$image")
  # qemu-io reports failed requests in its output, not its exit code.
  out=$(qemu-io -c "write -P 0x63 $((end - 65536)) 64k" -c "read -P 0x63 $((end - 65536)) 64k" \
    "$image" 2>&1)
  case "$out" in *ail*) fail "$what: write at the new end: $out" ;; esac
  qemu-img check "$image" >/dev/null 2>&1 || fail "$what: check after a write"
}

# vmdk_grow SIZE [CAPACITY]: grows a monolithicSparse image with data at both ends; the result
# must be check-clean, read like qemu-img's resize of a raw copy, and accept writes at its end.
vmdk_grow() {
  CHECKS=$((CHECKS + 1))
  local size="$1" capacity="${2:-64M}"
  rm -f i/g.vmdk i/g.raw
  qemu-img create -q -f vmdk i/g.vmdk "$capacity"
  qemu-io -c "write -P 0x61 0 64k" -c "write -P 0x62 $(( $(vsize i/g.vmdk) - 65536 )) 64k" \
    i/g.vmdk >/dev/null || { fail "vmdk setup"; return; }
  qemu-img convert -O raw i/g.vmdk i/g.raw
  qemu-img resize -q -f raw i/g.raw "$size"
  local out
  out=$("$INSTAR" resize i/g.vmdk "$size" 2>&1)
  [ "$out" = "Image resized." ] || { fail "vmdk grow to $size: $out"; return; }
  grown_like_raw i/g.vmdk i/g.raw "vmdk grow to $size"
}
# split_grow CAPACITY SIZE: grows a twoGbMaxExtentSparse image with data at both ends. The
# result must be check-clean, read like qemu-img's resize of a raw copy and accept writes at its
# end; its descriptor must be qemu-img create's for SIZE (but for the CID) and every new extent
# file byte for byte the one qemu-img create makes.
split_grow() {
  CHECKS=$((CHECKS + 1))
  local capacity="$1" size="$2" what="split vmdk $1 to $2"
  rm -rf s c && mkdir s c
  qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse s/t.vmdk "$capacity"
  local old_files
  old_files=$(ls s)
  qemu-io -c "write -P 0x61 0 64k" -c "write -P 0x62 $(( $(vsize s/t.vmdk) - 65536 )) 64k" \
    s/t.vmdk >/dev/null || { fail "$what: setup"; return; }
  qemu-img convert -O raw s/t.vmdk s/t.raw
  qemu-img resize -q -f raw s/t.raw "$size"
  qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse c/t.vmdk "$(vsize s/t.raw)"
  local out
  out=$("$INSTAR" resize s/t.vmdk "$size" 2>&1)
  [ "$out" = "Image resized." ] || { fail "$what: $out"; return; }
  diff <(tr -d '\0' <s/t.vmdk | grep -v '^CID=') <(grep -v '^CID=' c/t.vmdk) >&2 ||
    fail "$what: descriptor differs from qemu-img create's"
  local f
  for f in c/t-s*.vmdk; do
    f=${f#c/}
    echo "$old_files" | grep -qx "$f" && continue
    cmp -s "s/$f" "c/$f" || fail "$what: new extent $f differs from qemu-img create's"
  done
  grown_like_raw s/t.vmdk s/t.raw "$what"
}
split_grow 1G 1536M
split_grow 1G 2G
split_grow 3G 5G
split_grow 3G +2049M
split_grow 5G 11G
split_grow 100M 127G
# More than 64 extents, a name already taken: refused, nothing changed, nothing left behind.
split_refused() {
  CHECKS=$((CHECKS + 1))
  local size="$1" want="$2"
  rm -rf s && mkdir s
  qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse s/t.vmdk 3G
  [ -z "${3:-}" ] || echo taken >"s/$3"
  local before out
  before=$(cd s && md5sum ./*)
  out=$("$INSTAR" resize s/t.vmdk "$size" 2>&1)
  [ $? = 1 ] && [ "$out" = "$want" ] || fail "split vmdk to $size: '$out'"
  [ "$(cd s && md5sum ./*)" = "$before" ] || fail "split vmdk to $size: files changed"
}
split_refused 200G "instar: instar cannot grow this twoGbMaxExtentSparse image to 214748364800 bytes: it would need more than 64 extents"
split_refused 5G "instar: Could not open 's/t.vmdk': Could not create 's/t-s003.vmdk': File exists" \
  t-s003.vmdk

vmdk_grow 128M
vmdk_grow +1000k
vmdk_grow 4G
vmdk_grow 5G
vmdk_grow 100G
vmdk_grow 3G 1000M
finish
