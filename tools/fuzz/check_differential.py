#!/usr/bin/env python3
"""Differential fuzzing of `instar check` against `qemu-img check`.

Each case takes a small qcow2 template (several refcount widths and cluster sizes, with and
without snapshots), edits one to four random places of its metadata (header fields, L1 and L2
entries, the refcount table and blocks, the snapshot table), and runs both tools on copies:
plain, --output=json, -r leaks and -r all. Output (stdout and stderr, program name aside) and
exit codes must match; after a repair, `qemu-img check` must report both repaired copies alike.
Cases are numbered and seeded, so a failure is replayed with --seed S --first N --count 1.

  check_differential.py --instar PATH [--seed S] [--count N] [--first N] [--seconds T]
                        [--keep DIR]

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


def snapshot_table_in_header(path):
    """Whether the header's snapshot table pointer lies inside the header cluster."""
    img = Image(path)
    inside = img.nb_snapshots != 0 and img.snapshots_offset < img.cs
    img.f.close()
    return inside


def known_difference(mode, q, i, table_in_header):
    """The documented differences (docs/check.md, "Known differences"), by their signature."""
    q_err, i_err = q[2], i[2]
    # A snapshot table inside the header that a repair rewrites (the snapshot count): instar
    # reads the table again from disk, qemu keeps the copy it read at open.
    if table_in_header and mode[:1] == ["-r"]:
        return True
    # A refcount block far past the end of the file: instar refuses to grow the file there.
    if b"Could not resize file: File too large" in i_err and mode[:1] == ["-r"]:
        return True
    # qemu's repair stopped on its overlap check after a rebuild wrote over an L1 table that
    # overlaps other metadata: qemu reports that table's entries from its open-time copy.
    if OVERLAP_STOP in q_err and b"Rebuilding refcount structure" in q_err:
        q_lines, i_lines = q_err.split(b"\n"), i_err.split(b"\n")
        if len(q_lines) == len(i_lines) and all(
                a == b or (a.startswith(b"Repairing OFLAG_COPIED L2 cluster") and
                           b.startswith(b"Repairing OFLAG_COPIED L2 cluster"))
                for a, b in zip(q_lines, i_lines)):
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


def make_templates(directory):
    made = []
    for name, options, snapshot in TEMPLATES:
        path = os.path.join(directory, name + ".qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", options, path, "4M"],
                       check=True)
        writes = ["write -P 1 0 64k", "write -P 2 1M 8k", "write -P 3 3M 4k"]
        subprocess.run(["qemu-io", "-f", "qcow2"] + sum((["-c", w] for w in writes), []) + [path],
                       check=True, capture_output=True)
        if snapshot:
            subprocess.run(["qemu-img", "snapshot", "-c", "s1", path], check=True)
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 4 0 16k", path],
                           check=True, capture_output=True)
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


def mutate(img, rng):
    places = entry_places(img)
    size = img.file_size()
    edits = []
    for _ in range(rng.randint(1, 4)):
        off, kind = rng.choice(places)
        old = img.u64(off)
        choice = rng.randrange(6)
        if choice == 0:
            new = old ^ (1 << rng.randrange(64))
        elif choice == 1:
            new = 0
        elif choice == 2:  # another cluster of the file, keeping the flag bits
            new = (old & 0xFF000000000001FF) | (rng.randrange(max(1, size // img.cs) + 2) * img.cs)
        elif choice == 3:
            new = (old + rng.choice((-1, 1)) * img.cs) & 0xFFFFFFFFFFFFFFFF
        elif choice == 4:  # a small count (refcount blocks, table sizes)
            new = (old & ~0xFFFF) | rng.randrange(4)
        else:
            new = old ^ (1 << 63)  # OFLAG_COPIED and friends
        img.put_u64(off, new)
        edits.append("%s@%d:%x->%x" % (kind, off, old, new))
    img.f.flush()
    return edits


def compare(case, template, edits, instar, work, keep):
    """Runs every mode on copies; returns the differences found (strings)."""
    differences = []
    base = os.path.join(work, "case.qcow2")
    table_in_header = snapshot_table_in_header(base)
    for mode in MODES:
        dirs = {}
        for tool in ("q", "i"):
            dirs[tool] = os.path.join(work, tool)
            shutil.rmtree(dirs[tool], ignore_errors=True)
            os.makedirs(dirs[tool])
            shutil.copy(base, os.path.join(dirs[tool], "img.qcow2"))
        q = run(["qemu-img", "check"] + mode + ["img.qcow2"], dirs["q"], QEMU_TIMEOUT)
        if q is None:
            return []  # qemu-img itself runs away on this image: nothing to compare with
        i = run([instar, "check"] + mode + ["img.qcow2"], dirs["i"], INSTAR_TIMEOUT)
        if i is None:
            differences.append("instar timed out (%s)" % " ".join(mode))
            break
        nq, ni = normalized(q, "qemu-img"), normalized(i, "instar")
        if nq != ni and known_difference(mode, nq, ni, table_in_header):
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
            after = [normalized(run(["qemu-img", "check", "img.qcow2"], dirs[t], QEMU_TIMEOUT) or
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
        shutil.copy(base, os.path.join(keep, "case-%d.qcow2" % case))
    return differences


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instar", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--keep")
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
            base = os.path.join(work, "case.qcow2")
            shutil.copy(template, base)
            img = Image(base)
            edits = mutate(img, rng)
            img.f.close()
            differences = compare(case, template, edits, instar, work, keep)
            ran += 1
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
