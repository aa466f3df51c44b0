#!/bin/bash
# Builds a qcow2 image (512-byte clusters, SNAPSHOTS snapshots) whose file ends GAP clusters before a
# multiple of BOUNDARY bytes, so that whatever qemu allocates next at its end needs a new
# refcount block (BOUNDARY: the clusters one block counts) or a larger refcount table
# (BOUNDARY: the clusters the table's blocks count). Single-cluster data writes grow the file
# one cluster at a time until it gets there.
#
#   refblock_edge_image.sh FILE REFCOUNT_BITS BOUNDARY GAP SNAPSHOTS SNAPSHOT_NAME_BYTES FILL
set -eu
f="$1" width="$2" boundary="$3" gap="$4" snapshots="$5" name_bytes="$6" fill="$7"
rm -f "$f"
qemu-img create -q -f qcow2 -o "refcount_bits=$width,cluster_size=512" "$f" 64M
qemu-io -c "write 0 $fill" "$f" >/dev/null
for n in $(seq 1 "$snapshots"); do
  qemu-img snapshot -c "$(head -c "$name_bytes" /dev/zero | tr '\0' s)$n" "$f"
done
guest=$((8 << 20))
for _ in $(seq 1 5000); do
  [ $(( ($(stat -c %s "$f") + gap * 512) % boundary )) -eq 0 ] && exit 0
  qemu-io -c "write $guest 512" "$f" >/dev/null
  guest=$((guest + 512))
done
echo "refblock_edge_image.sh: $f never reached the boundary" >&2
exit 1
