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

# instar only: an extent outside the allowed directories is refused unless allowed.
mkdir -p outside
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "../d/monolithicFlat-flat.vmdk" 0\n' > outside/escape.vmdk
expect_refusal "extent outside the allowlist" "outside the allowed directories" \
  "$INSTAR" info outside/escape.vmdk
check "extent allowed by --allow-dir" quietly "$INSTAR" info --allow-dir d outside/escape.vmdk
finish
