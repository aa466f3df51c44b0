#!/bin/bash
# Differential test: `instar info --backing-chain` against qemu-img on chains of depth 1..5
# with relative and absolute backing names, mixed formats and missing layers; plus instar's
# own chain policy (allowlist, depth cap, cycles, pseudo-paths).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/differential/info_helpers.sh"
cd "$WORK" || exit 1

mkdir -p rel abs
qemu-img create -q -f qcow2 rel/l0.qcow2 16M
qemu-img create -q -f qcow2 abs/l0.qcow2 16M
for i in 1 2 3 4 5; do
  qemu-img create -q -f qcow2 -b l$((i - 1)).qcow2 -F qcow2 rel/l$i.qcow2
  qemu-img create -q -f qcow2 -b "$WORK/abs/l$((i - 1)).qcow2" -F qcow2 abs/l$i.qcow2
  compare_info rel/l$i.qcow2 --backing-chain
  compare_info abs/l$i.qcow2 --backing-chain
done
compare_info rel/l5.qcow2
compare_info abs/l5.qcow2
(cd rel && compare_info l3.qcow2 --backing-chain)

# Mixed formats, backing without a format, a chain ending in raw.
qemu-img create -q -f raw base.raw 8M
qemu-img create -q -f qcow2 -b base.raw -F raw over-raw.qcow2
qemu-img create -q -f qcow2 -b over-raw.qcow2 -F qcow2 over2.qcow2
qemu-img create -q -f qcow2 -b rel/l0.qcow2 -u noformat.qcow2 16M
compare_info over2.qcow2 --backing-chain
compare_info noformat.qcow2 --backing-chain
compare_info noformat.qcow2

# A missing backing file: plain info does not open it, --backing-chain fails like qemu.
qemu-img create -q -f qcow2 -b nowhere.qcow2 -F qcow2 -u missing.qcow2 1M
qemu-img create -q -f qcow2 -b missing.qcow2 -F qcow2 above-missing.qcow2
compare_info missing.qcow2
compare_info missing.qcow2 --backing-chain
compare_info above-missing.qcow2 --backing-chain

# instar's chain policy.
mkdir -p top other
qemu-img create -q -f qcow2 other/base.qcow2 1M
qemu-img create -q -f qcow2 -b ../other/base.qcow2 -F qcow2 top/escape.qcow2
expect_refusal "backing outside the allowlist" "outside the allowed directories" \
  "$INSTAR" info --backing-chain top/escape.qcow2
check "--allow-dir widens the allowlist" quietly "$INSTAR" info --backing-chain --allow-dir other top/escape.qcow2
printf '# instar configuration\nallow %s/other\n' "$WORK" > instar.conf
check "INSTAR_CONFIG widens the allowlist" \
  quietly env INSTAR_CONFIG="$WORK/instar.conf" "$INSTAR" info --backing-chain top/escape.qcow2
printf 'permit /\n' > bad.conf
expect_refusal "malformed configuration" "expected 'allow DIR'" \
  env INSTAR_CONFIG="$WORK/bad.conf" "$INSTAR" info top/escape.qcow2

qemu-img create -q -f qcow2 -b cycle-b.qcow2 -F qcow2 -u cycle-a.qcow2 1M
qemu-img create -q -f qcow2 -b cycle-a.qcow2 -F qcow2 -u cycle-b.qcow2 1M
expect_refusal "cycle" "cycle" "$INSTAR" info --backing-chain cycle-a.qcow2
# qemu-img will not create a self-reference: name another file, then patch the name.
qemu-img create -q -f qcow2 -b selx.qcow2 -F qcow2 -u self.qcow2 1M
python3 -c 'import sys; p=sys.argv[1]; d=open(p,"rb").read(); open(p,"wb").write(d.replace(b"selx.qcow2", b"self.qcow2"))' self.qcow2
expect_refusal "self-reference" "cycle" "$INSTAR" info --backing-chain self.qcow2

for name in 'json:{"driver":"null-co"}' 'nbd:localhost:10809' 'http://example.com/x.qcow2'; do
  qemu-img create -q -f qcow2 -b "$name" -F qcow2 -u pseudo.qcow2 1M
  expect_refusal "pseudo-path $name" "pseudo-path" "$INSTAR" info --backing-chain pseudo.qcow2
  compare_info pseudo.qcow2
done

mkdir -p deep
qemu-img create -q -f qcow2 deep/d0.qcow2 1M
for i in $(seq 1 17); do
  qemu-img create -q -f qcow2 -b d$((i - 1)).qcow2 -F qcow2 deep/d$i.qcow2
done
compare_info deep/d16.qcow2 --backing-chain
expect_refusal "depth cap" "deeper than 16" "$INSTAR" info --backing-chain deep/d17.qcow2
finish
