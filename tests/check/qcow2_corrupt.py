#!/usr/bin/env python3
"""Builds corrupted qcow2 images for the check tests by editing on-disk structures directly
(QEMU qcow2 specification field offsets; no qemu code). One defect per invocation:

  qcow2_corrupt.py IMAGE DEFECT

DEFECT is one of the names in DEFECTS below. Edits are in place.
"""
import struct
import sys


class Image:
    def __init__(self, path):
        self.f = open(path, "r+b")
        h = self.read(0, 104)
        (self.magic, self.version, self.backing_offset, self.backing_size, self.cluster_bits,
         self.size, self.crypt, self.l1_size, self.l1_offset, self.rt_offset, self.rt_clusters,
         self.nb_snapshots, self.snapshots_offset) = struct.unpack(">IIQIIQIIQQIIQ", h[:72])
        self.refcount_order = 4
        self.incompat = 0
        if self.version >= 3:
            self.incompat = struct.unpack(">Q", h[72:80])[0]
            self.refcount_order = struct.unpack(">I", h[96:100])[0]
        self.cs = 1 << self.cluster_bits
        self.extended = bool(self.incompat & 16)
        self.l2_entry_size = 16 if self.extended else 8

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n).ljust(n, b"\0")

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def u64(self, off):
        return struct.unpack(">Q", self.read(off, 8))[0]

    def put_u64(self, off, v):
        self.write(off, struct.pack(">Q", v))

    def file_size(self):
        self.f.seek(0, 2)
        return self.f.tell()

    # L1 / L2
    def l1(self, i):
        return self.u64(self.l1_offset + 8 * i)

    def set_l1(self, i, v):
        self.put_u64(self.l1_offset + 8 * i, v)

    def first_l1(self):
        for i in range(self.l1_size):
            if self.l1(i):
                return i
        raise SystemExit("no allocated L2 table")

    def l2_table(self):
        return self.l1(self.first_l1()) & 0x00FFFFFFFFFFFE00

    def l2_entries(self):
        return self.cs // self.l2_entry_size

    def l2_addr(self, j):
        return self.l2_table() + j * self.l2_entry_size

    def data_entries(self):
        out = []
        for j in range(self.l2_entries()):
            e = self.u64(self.l2_addr(j))
            if e & (1 << 62) == 0 and e & 0x00FFFFFFFFFFFE00:
                out.append(j)
        return out

    # refcounts
    def refblock_of(self, cluster):
        per_block = (self.cs * 8) >> self.refcount_order
        rt_index, index = divmod(cluster, per_block)
        rb = self.u64(self.rt_offset + 8 * rt_index) & ~0x1FF
        return rb, index

    def refcount(self, cluster):
        rb, index = self.refblock_of(cluster)
        bits = 1 << self.refcount_order
        bit = index * bits
        raw = int.from_bytes(self.read(rb + bit // 8 - (bit // 8) % max(1, bits // 8),
                                       max(1, bits // 8)), "big")
        if bits < 8:
            return (raw >> (bit % 8)) & ((1 << bits) - 1)
        return raw

    def set_refcount(self, cluster, value):
        rb, index = self.refblock_of(cluster)
        bits = 1 << self.refcount_order
        if bits < 8:
            off = rb + index * bits // 8
            byte = self.read(off, 1)[0]
            shift = (index * bits) % 8
            mask = ((1 << bits) - 1) << shift
            byte = (byte & ~mask) | ((value << shift) & mask)
            self.write(off, bytes([byte]))
        else:
            self.write(rb + index * bits // 8, value.to_bytes(bits // 8, "big"))

    def free_cluster_in_range(self):
        """A cluster inside the file that nothing references (refcount 0)."""
        for c in range(self.file_size() // self.cs):
            if self.refcount(c) == 0:
                return c
        raise SystemExit("no free cluster")


def leak(img):
    # A cluster past everything the image references, counted once: one leaked cluster.
    c = img.file_size() // img.cs
    img.write(c * img.cs, b"\0" * img.cs)
    img.set_refcount(c, 1)


def leak_many(img):
    for _ in range(3):
        leak(img)


def refcount_zero(img):
    j = img.data_entries()[0]
    img.set_refcount((img.u64(img.l2_addr(j)) & 0x00FFFFFFFFFFFE00) >> img.cluster_bits, 0)


def refcount_high(img):
    j = img.data_entries()[0]
    c = (img.u64(img.l2_addr(j)) & 0x00FFFFFFFFFFFE00) >> img.cluster_bits
    img.set_refcount(c, img.refcount(c) + 1 if img.refcount_order > 0 else 1)


def refcount_low(img):
    # Needs a snapshot: a shared cluster (refcount 2) stored as 1.
    j = img.data_entries()[0]
    c = (img.u64(img.l2_addr(j)) & 0x00FFFFFFFFFFFE00) >> img.cluster_bits
    img.set_refcount(c, 1)


def copied_l2_clear(img):
    j = img.data_entries()[0]
    img.put_u64(img.l2_addr(j), img.u64(img.l2_addr(j)) & ~(1 << 63))


def copied_l2_set(img):
    j = img.data_entries()[0]
    img.put_u64(img.l2_addr(j), img.u64(img.l2_addr(j)) | (1 << 63))


def copied_l1_clear(img):
    i = img.first_l1()
    img.set_l1(i, img.l1(i) & ~(1 << 63))


def l2_unaligned(img):
    j = img.data_entries()[0]
    img.put_u64(img.l2_addr(j), img.u64(img.l2_addr(j)) + 512)


def l2_past_eof(img):
    j = img.data_entries()[0]
    e = img.u64(img.l2_addr(j))
    img.put_u64(img.l2_addr(j), (e & 0xFF00000000000000) | (img.file_size() + 16 * img.cs))


def l2_reserved(img):
    j = img.data_entries()[0]
    img.put_u64(img.l2_addr(j), img.u64(img.l2_addr(j)) | 0x2)


def l1_reserved(img):
    i = img.first_l1()
    img.set_l1(i, img.l1(i) | 0x100)


def l1_unaligned(img):
    i = img.first_l1()
    img.set_l1(i, img.l1(i) + 512)


def l2_overlaps_refblock(img):
    # A data cluster pointing at the first refcount block: referenced twice.
    j = img.data_entries()[0]
    rb, _ = img.refblock_of(0)
    e = img.u64(img.l2_addr(j))
    img.put_u64(img.l2_addr(j), (e & 0xFF00000000000000) | rb)


def refblock_unaligned(img):
    img.put_u64(img.rt_offset, img.u64(img.rt_offset) + 512)


def reftable_reserved(img):
    img.put_u64(img.rt_offset, img.u64(img.rt_offset) | 0x1)


def l2_duplicate(img):
    # Two guest clusters share one host cluster without the refcount saying so (with 1-bit
    # refcounts the computed count overflows).
    first, second = img.data_entries()[:2]
    e = img.u64(img.l2_addr(first))
    img.put_u64(img.l2_addr(second), e)


def spread_duplicates(img):
    # Entries sharing host clusters far apart, with reserved bits on entries between them: at
    # 1-bit refcounts the overflows fall in different windows of a multi-pass count, between
    # findings only the first window reports; the clusters the copied entries used now leak.
    d = img.data_entries()
    n = len(d)
    for a, b in ((0, n // 2), (n // 4, n - 1)):
        img.put_u64(img.l2_addr(d[a]), img.u64(img.l2_addr(d[b])))
    for r in (n // 3, 2 * n // 3):
        img.put_u64(img.l2_addr(d[r]), img.u64(img.l2_addr(d[r])) | 0x100)


def compressed_copied(img):
    for j in range(img.l2_entries()):
        for table in [img.l2_table()]:
            e = img.u64(table + j * img.l2_entry_size)
            if e & (1 << 62):
                img.put_u64(table + j * img.l2_entry_size, e | (1 << 63))
                return
    raise SystemExit("no compressed cluster in the first L2 table")


def zero_unaligned(img):
    # A preallocated zero cluster whose offset is not cluster aligned.
    j = img.data_entries()[0]
    e = img.u64(img.l2_addr(j))
    img.put_u64(img.l2_addr(j), (e & ~1) + 512 | 1)


def refblock_outside(img):
    # A second refcount table entry pointing past the end of the file.
    off = (img.file_size() // img.cs + 4) * img.cs
    img.put_u64(img.rt_offset + 8, off)


def bitmaps_autoclear(img):
    # As a program without bitmap support leaves an image: the bitmaps autoclear bit cleared.
    img.put_u64(88, 0)


def corrupt_bit(img):
    img.put_u64(72, img.u64(72) | 2)


def dirty_bit(img):
    img.put_u64(72, img.u64(72) | 1)


def snapshot_l1_unaligned(img):
    img.put_u64(img.snapshots_offset, img.u64(img.snapshots_offset) + 8)


def l1_to_header(img):
    # An L2 table at offset 0: the header read as L2 entries; a repair must not write there.
    img.set_l1(img.first_l1(), 1 << 63)


def l1_to_l1(img):
    # The L1 table used as one of its own L2 tables.
    img.set_l1(img.first_l1(), (1 << 63) | img.l1_offset)


def l1_truncated(img):
    # The file ends inside the first L1 entry.
    img.f.truncate(img.l1_offset + 4)


def reftable_empty(img):
    # refcount_table_clusters 0: qemu's check opens it and finds every refcount missing.
    img.write(56, struct.pack(">I", 0))


# Snapshot table entries: 40-byte header (extra data size at +36), extra data, id, name.
def snapshot_count_lies(img):
    # The header counts entries past the table; they read as the zeros that follow it.
    img.write(60, struct.pack(">I", img.nb_snapshots + 5))


def snapshot_incomplete(img):
    # A v3 entry without the VM-state and disk-size extra data.
    img.write(img.snapshots_offset + 36, struct.pack(">I", 0))


def snapshot_last_incomplete(img):
    # The last entry without its extra data (nothing after it is read as an entry).
    off = img.snapshots_offset
    for _ in range(img.nb_snapshots - 1):
        id_size, name_size = struct.unpack(">HH", img.read(off + 12, 4))
        extra = struct.unpack(">I", img.read(off + 36, 4))[0]
        off += (40 + extra + id_size + name_size + 7) & ~7
    img.write(off + 36, struct.pack(">I", 0))


def snapshot_extra_big(img):
    # More extra data than qemu keeps (1024 bytes); id and name now lie behind it.
    img.write(img.snapshots_offset + 36, struct.pack(">I", 2000))
    img.write(img.snapshots_offset + 40 + 16, bytes(range(1, 200)))


def snapshot_extra_huge(img):
    # Extra data reaching past 2 GiB: the entry makes the table too big.
    img.write(img.snapshots_offset + 36, struct.pack(">I", 0xFFFFFFFF))


def snapshot_count_huge(img):
    # More entries than qemu allows (65536).
    img.write(60, struct.pack(">I", 65536 + 3))


DEFECTS = {f.__name__: f for f in [
    leak, leak_many, refcount_zero, refcount_high, refcount_low, copied_l2_clear, copied_l2_set,
    copied_l1_clear, l2_unaligned, l2_past_eof, l2_reserved, l1_reserved, l1_unaligned,
    l2_overlaps_refblock, refblock_unaligned, reftable_reserved, corrupt_bit, dirty_bit,
    snapshot_l1_unaligned, l2_duplicate, spread_duplicates, compressed_copied, zero_unaligned, refblock_outside,
    bitmaps_autoclear, l1_to_header, l1_to_l1, l1_truncated, reftable_empty, snapshot_count_lies, snapshot_incomplete, snapshot_last_incomplete, snapshot_extra_big,
    snapshot_extra_huge, snapshot_count_huge]}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in DEFECTS:
        sys.exit("usage: qcow2_corrupt.py IMAGE {%s}" % ",".join(DEFECTS))
    img = Image(sys.argv[1])
    DEFECTS[sys.argv[2]](img)
    img.f.close()


if __name__ == "__main__":
    main()
