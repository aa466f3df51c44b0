#!/bin/bash
# Differential test: `instar info` against `qemu-img info` on images qemu-img creates, human
# and JSON output, byte for byte, plus the error paths for unusable files.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1

qemu-img create -q -f qcow2 plain.qcow2 64M
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1G
qemu-img create -q -f qcow2 -b plain.qcow2 -F qcow2 overlay.qcow2
qemu-img create -q -f raw sized.raw 1000000
printf 'abc' > tiny.raw
: > empty.raw
mkdir adir
head -c 50 plain.qcow2 > truncated.qcow2

for f in plain.qcow2 v2.qcow2 overlay.qcow2 sized.raw tiny.raw empty.raw; do
  compare_with_qemu info "$f"
  compare_with_qemu info --output=json "$f"
  compare_with_qemu info --output json "$f"
done
compare_with_qemu info -f raw plain.qcow2
compare_with_qemu info -f qcow2 empty.raw
compare_with_qemu info missing.qcow2
compare_with_qemu info adir
compare_with_qemu info
compare_with_qemu info a b
compare_with_qemu info --output=xml plain.qcow2
compare_with_qemu info -f nosuchformat plain.qcow2
compare_with_qemu info --bogus plain.qcow2
compare_with_qemu info -f
finish
