#!/bin/bash
# Differential test: what `instar info` does with files the caller may not read and with
# images a running QEMU holds (its image locks), against qemu-img.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/testlib.sh"
cd "$WORK" || exit 1

# A file the caller may not read: the error must be qemu-img's, not a KVM one, so run as an
# unprivileged user (the process sandbox needs no /dev/kvm).
public="$(mktemp -d /tmp/instar-unreadable.XXXXXX)"
chmod 755 "$public"
cp "$INSTAR" "$public/instar"
printf 'secret' > "$public/secret.img"
chmod 600 "$public/secret.img"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
CHECKS=$((CHECKS + 1))
(cd "$public" && as_nobody qemu-img info secret.img) >/dev/null 2>"$WORK/q.err"; qrc=$?
(cd "$public" && as_nobody env INSTAR_SANDBOX=process ./instar info secret.img) >/dev/null 2>"$WORK/i.err"; irc=$?
if [ "$qrc" != 1 ] || [ "$irc" != 1 ] ||
   [ "$(sed 's/^qemu-img: //' "$WORK/q.err")" != "$(sed 's/^instar: //' "$WORK/i.err")" ]; then
  fail "unreadable file: qemu-img ($qrc) '$(cat "$WORK/q.err")' vs instar ($irc) '$(cat "$WORK/i.err")'"
fi
rm -rf "$public"

# An image QEMU holds (qemu-io stands in for a running VM): refused without -U, as qemu-img
# refuses it; read with -U.
qemu-img create -q -f qcow2 busy.qcow2 16M
qemu-io -c "sleep 20000" busy.qcow2 &
holder=$!
for _ in $(seq 100); do grep -q OFDLCK /proc/locks && ! qemu-img info busy.qcow2 >/dev/null 2>&1 && break; sleep 0.05; done
compare_with_qemu info busy.qcow2
compare_with_qemu info -U busy.qcow2
compare_with_qemu info --force-share --output=json busy.qcow2
kill $holder
wait $holder 2>/dev/null
finish
