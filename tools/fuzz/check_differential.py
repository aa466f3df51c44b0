#!/usr/bin/env python3
"""Differential fuzzing of `instar check` against `qemu-img check`.

Each case takes a small template, qcow2 (several refcount widths and cluster sizes, with and
without snapshots) or monolithicSparse vmdk, edits one to four random places of its metadata
(qcow2: header fields, L1 and L2 entries, the refcount table and blocks, the snapshot table;
vmdk: header fields, grain directory and grain table entries, redundant ones too), and runs
both tools on copies: plain, --output=json, -r leaks and -r all. Output (stdout and stderr, program name aside) and
exit codes must match; after a repair, `qemu-img check` must report both repaired copies alike.
Cases are numbered and seeded, so a failure is replayed with --seed S --first N --count 1.

  check_differential.py --instar PATH [--seed S] [--count N] [--first N] [--seconds T]
                        [--keep DIR] [--instar-args "ARGS"]

--instar-args adds instar-only flags to every instar run, e.g. "--max-clusters-per-pass 7" to
count in many small passes (whose output must still be qemu's).

Stops after --count cases or --seconds, whichever comes first; exits 1 if any case differed
(each difference is printed with its case number and, with --keep, its images are kept).
Cases on which qemu-img runs past its timeout are skipped, and so are the differences
docs/check.md lists as known (see KNOWN below).
"""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "check"))
from qcow2_corrupt import Image  # noqa: E402

QEMU_TIMEOUT = 20
INSTAR_TIMEOUT = 120
MODES = ([], ["--output=json"], ["-r", "leaks"], ["-r", "all"])

# (name, qemu-img create options, snapshot?)
TEMPLATES = (
    ("w16-64k", "cluster_size=65536", False),
    ("w16-64k-snap", "cluster_size=65536", True),
    ("w1-4k", "cluster_size=4096,refcount_bits=1", False),
    ("w64-4k-snap", "cluster_size=4096,refcount_bits=64", True),
    ("w8-512", "cluster_size=512,refcount_bits=8", False),
    ("w2-512-snap", "cluster_size=512,refcount_bits=2", True),
    ("w32-64k-v2", "cluster_size=65536,compat=0.10", True),
)


OVERLAP_STOP = b"Preventing invalid write on metadata"


def table_overlaps(path):
    """(snapshot table inside the header cluster, active L1 table overlapping the header, the
    refcount table, a refcount block or an L2 table it names): the images on which qemu's open-time copies of
    those tables and instar's reads from disk can see different bytes once a repair writes."""
    img = Image(path)
    snapshots_in_header = img.nb_snapshots != 0 and img.snapshots_offset < img.cs
    l1_start, l1_end = img.l1_offset, img.l1_offset + 8 * img.l1_size
    size = img.file_size()
    others = [(0, img.cs), (img.rt_offset, img.rt_offset + img.rt_clusters * img.cs)]
    for i in range(min(img.rt_clusters * img.cs // 8, 4096)):
        block = img.u64(img.rt_offset + 8 * i) & ~0x1FF
        if block:
            others.append((block, block + img.cs))
    for i in range(min(img.l1_size, (size - min(size, img.l1_offset)) // 8)):
        l2 = img.l1(i) & 0x00FFFFFFFFFFFE00
        if l2:
            others.append((l2, l2 + img.cs))
    img.f.close()
    l1_overlaps = img.l1_size != 0 and any(a < l1_end and l1_start < b for a, b in others)
    return snapshots_in_header, l1_overlaps


def first_difference(a, b):
    a_lines, b_lines = a.split(b"\n"), b.split(b"\n")
    for x, y in zip(a_lines, b_lines):
        if x != y:
            return x, y
    return b"", b""


def known_difference(mode, q, i, overlaps):
    """The documented differences (docs/check.md, "Known differences"), by their signature."""
    q_err, i_err = q[2], i[2]
    snapshots_in_header, l1_overlaps = overlaps
    if mode[:1] == ["-r"]:
        # A snapshot table inside the header that a repair rewrites (the snapshot count):
        # instar reads the table again from disk, qemu keeps the copy it read at open.
        if snapshots_in_header:
            return True
        # An active L1 table overlapping other metadata that a repair writes: qemu reports
        # OFLAG_COPIED from its open-time copy of the table, instar from the disk.
        if l1_overlaps and any(b"OFLAG_COPIED" in line for line in first_difference(q_err, i_err)):
            return True
    # Freeing the old snapshot table fails in qemu (a refcount that would underflow or
    # overflow): qemu undoes that call's decrements and says so; instar skips the cluster.
    if b"qcow2_free_clusters failed" in q_err:
        return True
    # A refcount block far past the end of the file: instar refuses to grow the file there.
    if b"Could not resize file: File too large" in i_err and mode[:1] == ["-r"]:
        return True
    return False


def run(args, cwd, timeout):
    try:
        p = subprocess.run(args, cwd=cwd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return p.returncode, p.stdout, p.stderr


def normalized(result, program):
    rc, out, err = result
    prefix = program.encode() + b": "
    lines = [b"PROG: " + line[len(prefix):] if line.startswith(prefix) else line
             for line in err.split(b"\n")]
    return rc, out, b"\n".join(lines)


# (name, virtual size) of the monolithicSparse vmdk templates.
VMDK_TEMPLATES = (("vmdk-4m", "4M"), ("vmdk-64m", "64M"))
TEMPLATE_WRITES = ("write -P 1 0 64k", "write -P 2 1M 8k", "write -P 3 3M 4k")


def qemu_io(path, image_format, commands):
    subprocess.run(["qemu-io", "-f", image_format] + sum((["-c", c] for c in commands), []) +
                   [path], check=True, capture_output=True)


def make_templates(directory):
    made = []
    for name, size in VMDK_TEMPLATES:
        path = os.path.join(directory, name + ".vmdk")
        subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", path, size], check=True)
        qemu_io(path, "vmdk", TEMPLATE_WRITES)
        made.append(path)
    for name, options, snapshot in TEMPLATES:
        path = os.path.join(directory, name + ".qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", options, path, "4M"],
                       check=True)
        qemu_io(path, "qcow2", TEMPLATE_WRITES)
        if snapshot:
            subprocess.run(["qemu-img", "snapshot", "-c", "s1", path], check=True)
            qemu_io(path, "qcow2", ["write -P 4 0 16k"])
        made.append(path)
    return made


def entry_places(img):
    """(offset, kind) of every 8-byte metadata entry worth editing, by structure."""
    places = [(off, "header") for off in (24, 32, 36, 40, 48, 56, 60, 64, 72, 80, 96)]
    places += [(img.l1_offset + 8 * i, "l1") for i in range(min(img.l1_size, 64))]
    size = img.file_size()
    for i in range(min(img.l1_size, 64)):
        l2 = img.l1(i) & 0x00FFFFFFFFFFFE00
        if l2 and l2 + img.cs <= size:
            entries = img.cs // img.l2_entry_size
            places += [(l2 + img.l2_entry_size * j, "l2") for j in range(0, entries, max(1, entries // 64))]
    rt_entries = min(img.rt_clusters * img.cs // 8, 64)
    places += [(img.rt_offset + 8 * i, "reftable") for i in range(rt_entries)]
    for i in range(rt_entries):
        block = img.u64(img.rt_offset + 8 * i) & ~0x1FF
        if block and block + img.cs <= size:
            places += [(block + k, "refblock") for k in range(0, min(img.cs, 512), 8)]
    if img.nb_snapshots and img.snapshots_offset + 64 <= size:
        places += [(img.snapshots_offset + k, "snapshot") for k in range(0, 64, 4)]
    return places


class Vmdk:
    """A monolithicSparse vmdk's 32-bit little-endian metadata entries (VMware's layout)."""

    def __init__(self, path):
        self.f = open(path, "r+b")
        head = self.read(0, 0x48)
        (_, _, _, self.capacity, self.grain, _, _, self.gtes, self.rgd, self.gd,
         _) = struct.unpack("<IIIQQQQIQQQ", head)

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n).ljust(n, b"\0")

    def u32(self, off):
        return struct.unpack("<I", self.read(off, 4))[0]

    def places(self):
        places = [(off, "header") for off in (4, 8, 12, 16, 20, 24, 28, 36, 44, 48, 56, 64)]
        self.f.seek(0, 2)
        size = self.f.tell()
        gd_entries = -(-self.capacity // max(1, self.grain * self.gtes))
        for directory, kind in ((self.gd, "gd"), (self.rgd, "rgd")):
            for i in range(min(gd_entries, 64)):
                entry = directory * 512 + 4 * i
                places.append((entry, kind))
                table = self.u32(entry) * 512
                if table and table + 4 * self.gtes <= size:
                    places += [(table + 4 * j, kind + "-gt")
                               for j in range(0, self.gtes, max(1, self.gtes // 64))]
        return places


def edit(rng, places, read, write, propose):
    """One to four edits of entries picked from `places` ((offset, kind) pairs): each entry's
    new value is `propose(old, rng)`. Returns the edits as text."""
    edits = []
    for _ in range(rng.randint(1, 4)):
        off, kind = rng.choice(places)
        old = read(off)
        new = propose(old, rng)
        write(off, new)
        edits.append("%s@%d:%x->%x" % (kind, off, old, new))
    return edits


def mutate_vmdk(path, rng):
    vmdk = Vmdk(path)
    vmdk.f.seek(0, 2)
    sectors = vmdk.f.tell() // 512

    def propose(old, rng):
        choice = rng.randrange(5)
        if choice == 0:
            return old ^ (1 << rng.randrange(32))
        if choice == 1:
            return 0
        if choice == 2:  # another sector of the file, or just past it
            return rng.randrange(sectors + 256)
        if choice == 3:
            return (old + rng.choice((-1, 1, 128))) & 0xFFFFFFFF
        return 0xFFFFFFFF

    def write(off, value):
        vmdk.f.seek(off)
        vmdk.f.write(struct.pack("<I", value))

    edits = edit(rng, vmdk.places(), vmdk.u32, write, propose)
    vmdk.f.close()
    return edits


def mutate(img, rng):
    size = img.file_size()

    def propose(old, rng):
        choice = rng.randrange(6)
        if choice == 0:
            return old ^ (1 << rng.randrange(64))
        if choice == 1:
            return 0
        if choice == 2:  # another cluster of the file, keeping the flag bits
            return (old & 0xFF000000000001FF) | (rng.randrange(max(1, size // img.cs) + 2) * img.cs)
        if choice == 3:
            return (old + rng.choice((-1, 1)) * img.cs) & 0xFFFFFFFFFFFFFFFF
        if choice == 4:  # a small count (refcount blocks, table sizes)
            return (old & ~0xFFFF) | rng.randrange(4)
        return old ^ (1 << 63)  # OFLAG_COPIED and friends

    edits = edit(rng, entry_places(img), img.u64, img.put_u64, propose)
    img.f.flush()
    return edits


def compare(case, template, edits, instar, work, keep, instar_args):
    """Runs every mode on copies; returns the differences found (strings), or None when
    qemu-img runs past its timeout (nothing to compare with)."""
    differences = []
    base = os.path.join(work, "case" + os.path.splitext(template)[1])
    name = "img" + os.path.splitext(template)[1]
    overlaps = table_overlaps(base) if base.endswith(".qcow2") else (False, False)
    for mode in MODES:
        dirs = {}
        for tool in ("q", "i"):
            dirs[tool] = os.path.join(work, tool)
            shutil.rmtree(dirs[tool], ignore_errors=True)
            os.makedirs(dirs[tool])
            shutil.copy(base, os.path.join(dirs[tool], name))
        q = run(["qemu-img", "check"] + mode + [name], dirs["q"], QEMU_TIMEOUT)
        if q is None:
            return None
        i = run([instar, "check"] + instar_args + mode + [name], dirs["i"], INSTAR_TIMEOUT)
        if i is None:
            differences.append("instar timed out (%s)" % " ".join(mode))
            break
        nq, ni = normalized(q, "qemu-img"), normalized(i, "instar")
        if nq != ni and known_difference(mode, nq, ni, overlaps):
            continue
        if nq != ni:
            differences.append("check %s: qemu rc %d, instar rc %d\n--- qemu\n%s%s--- instar\n%s%s"
                               % (" ".join(mode), nq[0], ni[0], nq[1].decode(errors="replace"),
                                  nq[2].decode(errors="replace"), ni[1].decode(errors="replace"),
                                  ni[2].decode(errors="replace")))
            continue
        # When qemu stops a repair on its overlap check it loses the refcount repairs it had
        # cached; instar's are on disk, so a later check differs (a known difference).
        if mode[:1] == ["-r"] and OVERLAP_STOP not in nq[2]:
            after = [normalized(run(["qemu-img", "check", name], dirs[t], QEMU_TIMEOUT) or
                                (-1, b"", b"timeout"), "qemu-img") for t in ("q", "i")]
            if after[0] != after[1]:
                differences.append("after check %s, qemu-img check differs:\n--- qemu's repair\n%s%s"
                                   "--- instar's repair\n%s%s"
                                   % (" ".join(mode), after[0][1].decode(errors="replace"),
                                      after[0][2].decode(errors="replace"),
                                      after[1][1].decode(errors="replace"),
                                      after[1][2].decode(errors="replace")))
    if differences and keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(base, os.path.join(keep, "case-%d%s" % (case, os.path.splitext(base)[1])))
    return differences


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instar", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--keep")
    parser.add_argument("--instar-args", default="")
    args = parser.parse_args()
    instar = os.path.abspath(args.instar)
    keep = os.path.abspath(args.keep) if args.keep else None
    deadline = time.monotonic() + args.seconds
    work = tempfile.mkdtemp(prefix="check-differential.")
    try:
        templates = make_templates(work)
        ran = skipped = failed = 0
        for case in range(args.first, args.first + args.count):
            if time.monotonic() > deadline:
                break
            rng = random.Random(args.seed * 1000003 + case)
            template = rng.choice(templates)
            base = os.path.join(work, "case" + os.path.splitext(template)[1])
            shutil.copy(template, base)
            if base.endswith(".vmdk"):
                edits = mutate_vmdk(base, rng)
            else:
                img = Image(base)
                edits = mutate(img, rng)
                img.f.close()
            differences = compare(case, template, edits, instar, work, keep,
                                  args.instar_args.split())
            ran += 1
            if differences is None:
                skipped += 1
                continue
            if differences:
                failed += 1
                print("case %d (%s; %s):" % (case, os.path.basename(template), ", ".join(edits)))
                for d in differences:
                    print("  " + d.replace("\n", "\n    "))
        print("%d cases, %d differed (seed %d, first %d)%s" % (
            ran, failed, args.seed, args.first, "" if skipped == 0 else ", %d skipped" % skipped))
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
