#!/bin/bash
# Differential test: `instar info` against `qemu-img info` on every vmdk subformat qemu-img
# creates (extent lists, CIDs, create types), from the image's directory and from elsewhere,
# plus vmdk backing files and missing extents.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/differential/info_helpers.sh"
cd "$WORK" || exit 1

mkdir -p d
for sub in monolithicSparse streamOptimized twoGbMaxExtentSparse monolithicFlat twoGbMaxExtentFlat; do
  qemu-img create -q -f vmdk -o subformat=$sub d/$sub.vmdk 5G
  (cd d && compare_info $sub.vmdk)
  compare_info d/$sub.vmdk
  compare_info "$WORK/d/$sub.vmdk"
  compare_info d/$sub.vmdk -f vmdk
done
qemu-img create -q -f vmdk small.vmdk 1M
qemu-img create -q -f vmdk -o adapter_type=lsilogic,hwversion=6 options.vmdk 100M
compare_info small.vmdk
compare_info options.vmdk

# A vmdk overlay names its parent with parentFileNameHint.
qemu-img create -q -f vmdk -b d/monolithicSparse.vmdk -F vmdk overlay.vmdk
compare_info overlay.vmdk
compare_info overlay.vmdk --backing-chain

# Extents that are not there: the descriptor copied away from them.
mkdir -p lonely
cp d/twoGbMaxExtentSparse.vmdk d/monolithicFlat.vmdk lonely/
compare_with_qemu info lonely/twoGbMaxExtentSparse.vmdk
compare_with_qemu info lonely/monolithicFlat.vmdk

# VMware's streamOptimized layout: the header defers to a footer (grain directory at the end).
# Made from a qemu-img image: the header's gd_offset becomes "at end", then a footer whose
# header copy (the original, with another capacity) sits between the two markers.
qemu-img create -q -f vmdk footer-base.vmdk 4M
python3 - <<'PY'
import struct
src = open("footer-base.vmdk", "rb").read()
head = bytearray(src)
struct.pack_into("<Q", head, 56, 0xFFFFFFFFFFFFFFFF)
def footer(capacity=16 * 2048, version=None, marker=3):
    f = bytearray(1536)
    struct.pack_into("<QII", f, 0, 0, 0, marker)
    f[512:1024] = src[:512]
    struct.pack_into("<Q", f, 512 + 12, capacity)
    if version is not None:
        struct.pack_into("<I", f, 512 + 4, version)
    return bytes(f)
open("footer-good.vmdk", "wb").write(bytes(head) + footer())
open("footer-marker.vmdk", "wb").write(bytes(head) + footer(marker=2))
open("footer-version.vmdk", "wb").write(bytes(head) + footer(version=7))
open("footer-none.vmdk", "wb").write(bytes(head))
open("footer-short.vmdk", "wb").write(bytes(head[:1024]))
PY
for f in good marker version none short; do
  compare_info footer-$f.vmdk
  compare_with_qemu check footer-$f.vmdk
done

# instar only: an extent outside the allowed directories is refused unless allowed.
mkdir -p outside
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "../d/monolithicFlat-flat.vmdk" 0\n' > outside/escape.vmdk
expect_refusal "extent outside the allowlist" "outside the allowed directories" \
  "$INSTAR" info outside/escape.vmdk
check "extent allowed by --allow-dir" quietly "$INSTAR" info --allow-dir d outside/escape.vmdk
finish
