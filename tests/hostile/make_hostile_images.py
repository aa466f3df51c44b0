#!/usr/bin/env python3
"""Writes a corpus of hostile images into OUTDIR, one defect per file:

  make_hostile_images.py OUTDIR

Every image starts as a valid one made by qemu-img (and qemu-io for data) and then has one
on-disk field set to an extreme, from the QEMU qcow2 and VMware VMDK specifications' field
offsets: header fields at their limits, tables at or past the end of the file, overlapping and
self-referencing tables, hostile backing names and descriptors. Deterministic: the same names
and bytes on every run. Prints the number of images written.
"""
import os
import shutil
import struct
import subprocess
import sys

QCOW2_FIELDS = {  # name: (offset, struct format) in the qcow2 header
    "version": (4, ">I"),
    "backing_file_offset": (8, ">Q"),
    "backing_file_size": (16, ">I"),
    "cluster_bits": (20, ">I"),
    "size": (24, ">Q"),
    "crypt_method": (32, ">I"),
    "l1_size": (36, ">I"),
    "l1_table_offset": (40, ">Q"),
    "refcount_table_offset": (48, ">Q"),
    "refcount_table_clusters": (56, ">I"),
    "nb_snapshots": (60, ">I"),
    "snapshots_offset": (64, ">Q"),
    "incompatible_features": (72, ">Q"),
    "compatible_features": (80, ">Q"),
    "autoclear_features": (88, ">Q"),
    "refcount_order": (96, ">I"),
    "header_length": (100, ">I"),
    "compression_type": (104, ">B"),
}

VMDK_FIELDS = {  # name: (offset, struct format) in the VMDK4 sparse extent header
    "version": (4, "<I"),
    "flags": (8, "<I"),
    "capacity": (12, "<Q"),
    "grain_size": (20, "<Q"),
    "descriptor_offset": (28, "<Q"),
    "descriptor_size": (36, "<Q"),
    "num_gtes_per_gt": (44, "<I"),
    "rgd_offset": (48, "<Q"),
    "gd_offset": (56, "<Q"),
    "overhead": (64, "<Q"),
    "compress_algorithm": (77, "<H"),
}

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Editor:
    """Reads and patches one image file in place."""

    def __init__(self, path, fields):
        self.path = path
        self.fields = fields

    def read(self, offset, length):
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length).ljust(length, b"\0")

    def write(self, offset, data):
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def get(self, name):
        offset, fmt = self.fields[name]
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt)))[0]

    def set(self, name, value):
        offset, fmt = self.fields[name]
        self.write(offset, struct.pack(fmt, value))

    def u64(self, offset, big_endian=True):
        return struct.unpack(">Q" if big_endian else "<Q", self.read(offset, 8))[0]

    def size(self):
        return os.path.getsize(self.path)

    def truncate(self, length):
        with open(self.path, "r+b") as f:
            f.truncate(length)


def qcow2_base(path, extra_options="", snapshot=False):
    """A 4 MiB qcow2 with data at the start, in the middle and at the end."""
    options = "cluster_size=65536" + ("," + extra_options if extra_options else "")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", options, path, "4M")
    run("qemu-io", "-c", "write -P 0x11 0 128k", "-c", "write -P 0x22 1M 64k",
        "-c", "write -P 0x33 4032k 64k", path)
    if snapshot:
        run("qemu-img", "snapshot", "-c", "s1", path)


def vmdk_base(path, subformat="monolithicSparse"):
    run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=" + subformat, path, "4M")
    run("qemu-io", "-f", "vmdk", "-c", "write -P 0x11 0 128k", "-c", "write -P 0x22 1M 64k",
        path)


def qcow2_header_cases():
    """(name, field, value) for single qcow2 header fields at their extremes."""
    cases = []
    for bits in (0, 1, 8, 22, 31, 32, 63, 64, U32_MAX):
        cases.append(("cluster_bits_%d" % bits, "cluster_bits", bits))
    for value in (0, 1 << 62, (1 << 63) - 1, U64_MAX):
        cases.append(("size_%x" % value, "size", value))
    for value in (0, 0x2000001, 0x7FFFFFFF, U32_MAX):
        cases.append(("l1_size_%x" % value, "l1_size", value))
    for value in (0, 1, 1 << 63, U64_MAX):
        cases.append(("l1_table_offset_%x" % value, "l1_table_offset", value))
        cases.append(("refcount_table_offset_%x" % value, "refcount_table_offset", value))
        cases.append(("snapshots_offset_%x" % value, "snapshots_offset", value))
    for value in (0, 0x100001, U32_MAX):
        cases.append(("refcount_table_clusters_%x" % value, "refcount_table_clusters", value))
    for value in (0, 7, 31, 255, U32_MAX):
        cases.append(("refcount_order_%x" % value, "refcount_order", value))
    for value in (0, 72, 103, 105, 65544, U32_MAX):
        cases.append(("header_length_%x" % value, "header_length", value))
    for value in (1, 65537, U32_MAX):
        cases.append(("nb_snapshots_%x" % value, "nb_snapshots", value))
    for value in (1, 2, 99):
        cases.append(("crypt_method_%d" % value, "crypt_method", value))
    for value in (1, 2, 0xFFFFFFFFFFFFFFE0, U64_MAX):
        cases.append(("incompatible_%x" % value, "incompatible_features", value))
    cases.append(("compatible_all", "compatible_features", U64_MAX))
    cases.append(("autoclear_all", "autoclear_features", U64_MAX))
    for value in (1, 2, 255):
        cases.append(("compression_type_%d" % value, "compression_type", value))
    for value in (0, 1, 4, U32_MAX):
        cases.append(("version_%x" % value, "version", value))
    return cases


def write_qcow2_cases(out, template):
    count = 0
    for name, field, value in qcow2_header_cases():
        path = os.path.join(out, "qcow2-%s.qcow2" % name)
        shutil.copyfile(template, path)
        Editor(path, QCOW2_FIELDS).set(field, value)
        count += 1

    def case(name, edit, base=template):
        path = os.path.join(out, "qcow2-%s.qcow2" % name)
        shutil.copyfile(base, path)
        edit(Editor(path, QCOW2_FIELDS))
        return 1

    def l1_entry(e, index=0):
        return e.get("l1_table_offset") + 8 * index

    def l2_table(e):
        return e.u64(l1_entry(e)) & 0x00FFFFFFFFFFFE00

    def refcount_block(e):
        return e.u64(e.get("refcount_table_offset")) & ~0x1FF

    copied = 1 << 63
    # Tables at, past and across the end of the file.
    count += case("l1_at_eof", lambda e: e.set("l1_table_offset", e.size()))
    count += case("l1_across_eof", lambda e: e.set("l1_table_offset", e.size() - 65536 + 4096))
    count += case("refcount_table_at_eof", lambda e: e.set("refcount_table_offset", e.size()))
    count += case("snapshots_at_eof",
                  lambda e: (e.set("nb_snapshots", 1), e.set("snapshots_offset", e.size())))
    # Overlapping and self-referencing tables.
    count += case("l1_on_header", lambda e: e.set("l1_table_offset", 0))
    count += case("l1_on_refcount_table",
                  lambda e: e.set("l1_table_offset", e.get("refcount_table_offset")))
    count += case("refcount_table_on_l1",
                  lambda e: e.set("refcount_table_offset", e.get("l1_table_offset")))
    count += case("l1_entry_to_header",
                  lambda e: e.write(l1_entry(e), struct.pack(">Q", copied)))
    count += case("l1_entry_to_l1",
                  lambda e: e.write(l1_entry(e), struct.pack(">Q", copied | e.get("l1_table_offset"))))
    count += case("l1_entry_past_eof",
                  lambda e: e.write(l1_entry(e), struct.pack(">Q", copied | (e.size() + 65536))))
    count += case("l1_entry_unaligned",
                  lambda e: e.write(l1_entry(e), struct.pack(">Q", copied | (l2_table(e) + 512))))
    count += case("l1_entry_all_ones",
                  lambda e: e.write(l1_entry(e), struct.pack(">Q", U64_MAX)))
    count += case("l2_self_reference",
                  lambda e: e.write(l2_table(e), struct.pack(">Q", copied | l2_table(e))))
    count += case("l2_entry_to_l1",
                  lambda e: e.write(l2_table(e), struct.pack(">Q", copied | e.get("l1_table_offset"))))
    count += case("l2_entry_past_eof",
                  lambda e: e.write(l2_table(e), struct.pack(">Q", copied | (1 << 55))))
    count += case("l2_compressed_huge",
                  lambda e: e.write(l2_table(e), struct.pack(">Q", (1 << 62) | ((1 << 62) - 1))))
    count += case("l2_all_ones", lambda e: e.write(l2_table(e), b"\xff" * 65536))
    count += case("l2_zero_flag_garbage",
                  lambda e: e.write(l2_table(e), struct.pack(">Q", 1 | 0x1FE)))
    count += case("refcount_entry_to_header",
                  lambda e: e.write(e.get("refcount_table_offset"), struct.pack(">Q", 0)))
    count += case("refcount_entry_past_eof",
                  lambda e: e.write(e.get("refcount_table_offset"), struct.pack(">Q", 1 << 50)))
    count += case("refcount_entry_to_l1",
                  lambda e: e.write(e.get("refcount_table_offset"),
                                    struct.pack(">Q", e.get("l1_table_offset"))))
    count += case("refcount_block_max", lambda e: e.write(refcount_block(e), b"\xff" * 65536))
    count += case("refcount_block_zero", lambda e: e.write(refcount_block(e), b"\0" * 65536))
    # Backing names: maximal, too long, past the file, with control characters.
    def backing(name_bytes, offset=None, size=None):
        def edit(e):
            at = 0x1000 if offset is None else offset
            e.write(at, name_bytes[:max(0, 65536 - at)])
            e.set("backing_file_offset", at)
            e.set("backing_file_size", len(name_bytes) if size is None else size)
        return edit
    count += case("backing_1023_control", backing(bytes(range(1, 32)) * 33))
    count += case("backing_1024", backing(b"b" * 1024))
    count += case("backing_size_max", backing(b"base.qcow2", size=U32_MAX))
    count += case("backing_past_eof", backing(b"x", offset=1 << 40))
    count += case("backing_in_header", backing(b"QFI", offset=1))
    count += case("backing_json", backing(b'json:{"file.filename":"/etc/passwd"}'))
    count += case("backing_absolute_etc", backing(b"/etc/passwd"))
    count += case("backing_dotdot", backing(b"../../../../../../etc/shadow"))
    count += case("backing_self", backing(b"qcow2-backing_self.qcow2"))
    # Header extensions: endless, overlong, and lists with absurd counts.
    def extension(ext_type, payload, length=None):
        def edit(e):
            at = e.get("header_length")
            e.write(at, struct.pack(">II", ext_type, len(payload) if length is None else length) + payload)
        return edit
    count += case("extension_length_max", extension(0x12345678, b"", U32_MAX))
    count += case("extension_past_cluster", extension(0x12345678, b"", 65536))
    count += case("feature_table_huge", extension(0x6803F857, b"\0" * 48, 0xFFFFFFF0))
    count += case("backing_format_1024", extension(0xE2792ACA, b"q" * 1024))
    count += case("bitmaps_count_max",
                  extension(0x23852875, struct.pack(">IIQQ", U32_MAX, 0, U64_MAX, 1 << 40)))
    count += case("data_file_ext", extension(0x44415441, b"/etc/passwd"))
    count += case("crypto_ext_huge", extension(0x0537BE77, struct.pack(">QQ", 0, U64_MAX)))
    # Truncations.
    count += case("truncated_50", lambda e: e.truncate(50))
    count += case("truncated_one_cluster", lambda e: e.truncate(65536))
    count += case("truncated_mid_l1", lambda e: e.truncate(e.get("l1_table_offset") + 4))
    return count


def write_snapshot_cases(out, template):
    """Snapshot-table defects on an image with one internal snapshot."""
    count = 0

    def case(name, edit):
        path = os.path.join(out, "qcow2-snapshot-%s.qcow2" % name)
        shutil.copyfile(template, path)
        e = Editor(path, QCOW2_FIELDS)
        edit(e, e.get("snapshots_offset"))
        return 1

    # Snapshot header: l1_table_offset u64 @0, l1_size u32 @8, id_str_size u16 @12,
    # name_size u16 @14, ..., extra_data_size u32 @36.
    count += case("l1_past_eof", lambda e, s: e.write(s, struct.pack(">Q", 1 << 50)))
    count += case("l1_size_max", lambda e, s: e.write(s + 8, struct.pack(">I", U32_MAX)))
    count += case("id_size_max", lambda e, s: e.write(s + 12, struct.pack(">H", 0xFFFF)))
    count += case("name_size_max", lambda e, s: e.write(s + 14, struct.pack(">H", 0xFFFF)))
    count += case("extra_size_max", lambda e, s: e.write(s + 36, struct.pack(">I", U32_MAX)))
    count += case("count_lies", lambda e, s: e.set("nb_snapshots", 1000))
    return count


def write_vmdk_cases(out, template, stream_template):
    count = 0

    def case(name, edit, base=template):
        path = os.path.join(out, "vmdk-%s.vmdk" % name)
        shutil.copyfile(base, path)
        edit(Editor(path, VMDK_FIELDS))
        return 1

    for value in (0, 1 << 62, U64_MAX):
        count += case("capacity_%x" % value, lambda e, v=value: e.set("capacity", v))
    for value in (0, 1, 3, 1 << 40):
        count += case("grain_size_%x" % value, lambda e, v=value: e.set("grain_size", v))
    for value in (0, 1, 1 << 31, U32_MAX):
        count += case("gtes_%x" % value, lambda e, v=value: e.set("num_gtes_per_gt", v))
    for value in (0, 1 << 40, U64_MAX):
        count += case("gd_offset_%x" % value, lambda e, v=value: e.set("gd_offset", v))
        count += case("descriptor_offset_%x" % value, lambda e, v=value: e.set("descriptor_offset", v))
        count += case("descriptor_size_%x" % value, lambda e, v=value: e.set("descriptor_size", v))
    for value in (0, 4, U32_MAX):
        count += case("version_%x" % value, lambda e, v=value: e.set("version", v))
    count += case("flags_all", lambda e: e.set("flags", U32_MAX))
    count += case("compress_99", lambda e: e.set("compress_algorithm", 99))
    count += case("rgd_equals_gd", lambda e: e.set("rgd_offset", e.get("gd_offset")))

    def gd_entry(e):
        return e.get("gd_offset") * 512

    def gt(e):
        return struct.unpack("<I", e.read(gd_entry(e), 4))[0] * 512

    count += case("gd_loop", lambda e: e.write(gd_entry(e), struct.pack("<I", e.get("gd_offset"))))
    count += case("gd_to_header", lambda e: e.write(gd_entry(e), struct.pack("<I", 0)))
    count += case("gd_past_eof", lambda e: e.write(gd_entry(e), struct.pack("<I", U32_MAX)))
    count += case("gt_to_gd", lambda e: e.write(gt(e), struct.pack("<I", e.get("gd_offset"))))
    count += case("gt_to_header", lambda e: e.write(gt(e), struct.pack("<I", 1)))
    count += case("gt_past_eof", lambda e: e.write(gt(e), struct.pack("<I", U32_MAX - 1)))
    count += case("truncated_header", lambda e: e.truncate(40))
    count += case("truncated_mid_gd", lambda e: e.truncate(gd_entry(e) + 2))
    count += case("stream_compress_99", lambda e: e.set("compress_algorithm", 99), stream_template)
    count += case("stream_grain_marker_garbage",
                  lambda e: e.write(e.get("overhead") * 512, b"\xff" * 512), stream_template)
    return count


def write_descriptor_cases(out):
    """Text descriptor files with hostile extents and parent hints."""
    head = ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
            'createType="%s"\n\n# Extent description\n')
    cases = {
        "extent_size_max": head % "monolithicFlat" + 'RW 18446744073709551615 FLAT "flat.bin" 0\n',
        "extent_offset_max": head % "monolithicFlat" + 'RW 8 FLAT "flat.bin" 18446744073709551615\n',
        "extent_etc_passwd": head % "monolithicFlat" + 'RW 8 FLAT "/etc/passwd" 0\n',
        "extent_dotdot": head % "monolithicFlat" + 'RW 8 FLAT "../../../etc/shadow" 0\n',
        "extent_control": head % "monolithicFlat" + 'RW 8 FLAT "a\x01\x1b[2Jb" 0\n',
        "extent_many": head % "twoGbMaxExtentFlat" + 'RW 8 FLAT "flat.bin" 0\n' * 10000,
        "extent_none": head % "monolithicFlat",
        "extent_self": head % "monolithicSparse" + 'RW 8 SPARSE "vmdk-desc-extent_self.vmdk"\n',
        "extent_unknown_type": head % "monolithicFlat" + 'RW 8 FANCY "flat.bin" 0\n',
        "create_type_unknown": head % "hyperSparse" + 'RW 8 FLAT "flat.bin" 0\n',
        "cid_not_hex": head.replace("12345678", "zz") % "monolithicFlat" + 'RW 8 FLAT "flat.bin" 0\n',
        "parent_hint_long": head % "monolithicFlat" + 'RW 8 FLAT "flat.bin" 0\n'
                            + 'parentFileNameHint="' + "p" * 4000 + '"\n',
        "line_long": head % "monolithicFlat" + 'RW 8 FLAT "' + "f" * 100000 + '" 0\n',
    }
    with open(os.path.join(out, "flat.bin"), "wb") as f:
        f.write(b"\x5a" * 4096)
    for name, text in cases.items():
        with open(os.path.join(out, "vmdk-desc-%s.vmdk" % name), "w", encoding="latin-1") as f:
            f.write(text)
    return len(cases)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    templates = os.path.join(out, ".templates")
    os.makedirs(templates, exist_ok=True)
    qcow2 = os.path.join(templates, "base.qcow2")
    qcow2_snapshot = os.path.join(templates, "snapshot.qcow2")
    vmdk = os.path.join(templates, "base.vmdk")
    stream = os.path.join(templates, "stream.vmdk")
    qcow2_base(qcow2)
    qcow2_base(qcow2_snapshot, snapshot=True)
    vmdk_base(vmdk)
    vmdk_base(stream, "streamOptimized")
    count = write_qcow2_cases(out, qcow2)
    count += write_snapshot_cases(out, qcow2_snapshot)
    count += write_vmdk_cases(out, vmdk, stream)
    count += write_descriptor_cases(out)
    shutil.rmtree(templates)
    print(count)


if __name__ == "__main__":
    main()
