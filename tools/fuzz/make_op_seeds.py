#!/usr/bin/env python3
"""Regenerates the seed corpora of the operations' fuzz targets (ops/<op>/<op>_fuzz) from
small images qemu-img makes: each seed is the target's config prefix (the layout is described
at the top of ops/<op>/<op>_fuzz.cc) followed by the files, separated as
ops/testing/operation_fuzz.h says. Rewrites ops/*/testdata/*_fuzz_corpus/seed-* (kept crash
inputs, named crash-*, stay). Run from anywhere; needs qemu-img and qemu-io."""
import os
import pathlib
import struct
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEPARATOR = b"\n--instar-fuzz-device--\n"
MIB = 1 << 20


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def qcow2(path, size="4M", opts="cluster_size=4096", writes=(), backing=None, fmt="qcow2"):
    cmd = ["qemu-img", "create", "-q", "-f", fmt, "-o", opts]
    if backing:
        cmd += ["-b", backing[0], "-F", backing[1]]
    run(*cmd, path, size)
    for w in writes:
        run("qemu-io", "-f", fmt, "-c", w, path)
    return path


def data(path):
    return pathlib.Path(path).read_bytes()


def seed(prefix, *files):
    return prefix + SEPARATOR.join(files)


def write_corpus(op, seeds):
    corpus = ROOT / "ops" / op / "testdata" / f"{op}_fuzz_corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for old in corpus.glob("seed-*"):
        old.unlink()
    for name, blob in seeds.items():
        (corpus / f"seed-{name}").write_bytes(blob)
    print(f"{op}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


def main():
    os.chdir(tempfile.mkdtemp())
    img = {}
    img["qcow2"] = data(qcow2("a.qcow2", writes=["write -P 1 0 8k", "write -P 2 1M 4k"]))
    img["qcow2-v2"] = data(qcow2("v2.qcow2", opts="cluster_size=4096,compat=0.10",
                                 writes=["write -P 3 0 4k"]))
    img["qcow2-512"] = data(qcow2("s.qcow2", size="1M", opts="cluster_size=512,refcount_bits=8",
                                  writes=["write -P 4 0 2k", "write -z 4k 1k"]))
    img["qcow2-l2ext"] = data(qcow2("x.qcow2", size="1M", opts="cluster_size=16k,extended_l2=on",
                                    writes=["write -P 5 0 4k"]))
    qcow2("snap.qcow2", writes=["write -P 6 0 4k"])
    run("qemu-img", "snapshot", "-c", "s1", "snap.qcow2")
    run("qemu-io", "-c", "write -P 7 0 4k", "snap.qcow2")
    img["qcow2-snapshot"] = data("snap.qcow2")
    run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", "a.qcow2",
        "c.qcow2")
    img["qcow2-compressed"] = data("c.qcow2")
    img["raw"] = bytes(range(256)) * 16
    qcow2("v.vmdk", size="4M", opts="subformat=monolithicSparse", fmt="vmdk",
          writes=["write -P 8 0 4k"])
    img["vmdk"] = data("v.vmdk")
    run("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", "v.vmdk",
        "st.vmdk")
    img["vmdk-stream"] = data("st.vmdk")
    # A chain: base.qcow2 <- mid.qcow2 <- top.qcow2, plus a second base for rebase.
    qcow2("base.qcow2", writes=["write -P 10 0 16k", "write -P 11 2M 8k"])
    qcow2("mid.qcow2", backing=("base.qcow2", "qcow2"), writes=["write -P 12 32k 8k"])
    qcow2("top.qcow2", backing=("mid.qcow2", "qcow2"), writes=["write -P 13 0 4k"])
    qcow2("other.qcow2", writes=["write -P 14 0 16k"])
    pathlib.Path("base.raw").write_bytes(bytes([15]) * (64 * 1024))
    qcow2("over-raw.qcow2", backing=("base.raw", "raw"), writes=["write -P 16 4k 4k"])
    chain = {n: data(n) for n in ["base.qcow2", "mid.qcow2", "top.qcow2", "other.qcow2",
                                  "base.raw", "over-raw.qcow2"]}
    # A leak and a corruption for check -r: an extra reference count, and a zeroed one.
    leaky = bytearray(img["qcow2"])
    header = img["qcow2"]
    rt_offset = struct.unpack(">Q", header[48:56])[0]
    refblock = struct.unpack(">Q", header[rt_offset:rt_offset + 8])[0]
    clusters = len(header) // 4096
    leaky[refblock + 2 * clusters:refblock + 2 * (clusters + 1)] = b"\x00\x01"
    leaky += bytes(4096)
    corrupt = bytearray(header)
    corrupt[refblock + 2 * 0:refblock + 2 * 1] = b"\x00\x00"

    def pre(*values, size=8):
        out = bytearray(size)
        out[:len(values)] = bytes(values)
        return bytes(out)

    write_corpus("info", {name: pre(0, 0) + blob for name, blob in img.items()} |
                 {"top": pre(0, 0) + chain["top.qcow2"], "qcow2-forced": pre(2, 0) + img["qcow2"],
                  "vmdk-forced": pre(3, 0) + img["vmdk"]})

    check = {}
    for name in ["qcow2", "qcow2-v2", "qcow2-512", "qcow2-l2ext", "qcow2-snapshot",
                 "qcow2-compressed", "vmdk", "vmdk-stream"]:
        check[name] = pre(0, 0, 1) + img[name]
    check["leak-r-leaks"] = pre(0, 1, 1) + bytes(leaky)
    check["leak-r-all"] = pre(0, 2, 1) + bytes(leaky)
    check["corrupt-r-all"] = pre(0, 2, 1) + bytes(corrupt)
    check["corrupt-multipass"] = pre(0, 0, 1, 1) + bytes(corrupt)
    check["snapshot-r-all"] = pre(0, 2, 1) + img["qcow2-snapshot"]
    check["backing-unchecked"] = pre(0, 0, 0) + chain["top.qcow2"]
    # A snapshot table rewrite that needs a new refcount block (the file ends at a block's end).
    run("bash", str(ROOT / "tests/check/refblock_edge_image.sh"), "edge.qcow2", "64", "32768",
        "0", "1", "2", "8k")
    run("python3", str(ROOT / "tests/check/qcow2_corrupt.py"), "edge.qcow2",
        "snapshot_last_incomplete")
    check["snapshot-edge-r-all"] = pre(0, 2, 1) + data("edge.qcow2")
    write_corpus("check", check)

    def resize_pre(mode, size, prealloc=0, shrink=0, backing_size=None, fmt=0):
        out = bytearray(24)
        out[0], out[1], out[2], out[3] = fmt, mode, prealloc, shrink
        if backing_size is not None:
            out[4] = 1
            out[16:24] = struct.pack("<Q", backing_size)
        out[8:16] = struct.pack("<Q", size)
        return bytes(out)

    resize = {
        "qcow2-grow": resize_pre(1, MIB) + img["qcow2"],
        "qcow2-grow-l1": resize_pre(0, 64 * MIB) + img["qcow2-512"],
        "qcow2-shrink": resize_pre(0, 2 * MIB, shrink=1) + img["qcow2"],
        "qcow2-shrink-snapshot": resize_pre(2, MIB, shrink=1) + img["qcow2-snapshot"],
        "qcow2-metadata": resize_pre(1, 256 * 1024, prealloc=1) + img["qcow2"],
        "qcow2-falloc": resize_pre(1, 64 * 1024, prealloc=2) + img["qcow2-v2"],
        "qcow2-full": resize_pre(1, 64 * 1024, prealloc=3) + img["qcow2-l2ext"],
        "qcow2-compressed": resize_pre(1, MIB) + img["qcow2-compressed"],
        "qcow2-backing-longer": resize_pre(1, MIB, backing_size=8 * MIB) + chain["top.qcow2"],
        "raw-grow": resize_pre(1, 4096, prealloc=2, fmt=1) + img["raw"],
        "raw-shrink": resize_pre(2, 512, shrink=1) + img["raw"],
        "vmdk-grow": resize_pre(1, MIB) + img["vmdk"],
    }
    write_corpus("resize", resize)

    def rebase_pre(unsafe=0, old=0, new_first=0, new_count=0, name=0, fmt=0, requested=0):
        return pre(requested, unsafe, old, new_first, new_count, name, fmt)

    rebase = {
        # overlay top.qcow2 over mid <- base: detach (copies the old chain in).
        "safe-detach": rebase_pre(old=2) + SEPARATOR.join(
            [chain["top.qcow2"], chain["mid.qcow2"], chain["base.qcow2"]]),
        "safe-onto-other": rebase_pre(old=2, new_first=2, new_count=1, name=1, fmt=1) +
        SEPARATOR.join([chain["top.qcow2"], chain["mid.qcow2"], chain["base.qcow2"],
                        chain["other.qcow2"]]),
        "safe-onto-suffix": rebase_pre(old=2, new_first=1, new_count=1, name=1, fmt=1) +
        SEPARATOR.join([chain["top.qcow2"], chain["mid.qcow2"], chain["base.qcow2"]]),
        "safe-raw-base": rebase_pre(old=1, new_first=1, new_count=1, name=1, fmt=1) +
        SEPARATOR.join([chain["over-raw.qcow2"], chain["base.raw"], chain["other.qcow2"]]),
        "unsafe-long-name": rebase_pre(unsafe=1, old=2, name=2, fmt=2) + SEPARATOR.join(
            [chain["top.qcow2"], chain["mid.qcow2"], chain["base.qcow2"]]),
        "unsafe-detach-v2": rebase_pre(unsafe=1) + img["qcow2-v2"],
        "vmdk-overlay": rebase_pre(old=0, new_first=0, new_count=1, name=1, fmt=3) +
        SEPARATOR.join([img["vmdk"], img["vmdk-stream"]]),
    }
    write_corpus("rebase", rebase)

    commit = {
        "top-into-mid": pre(0, 1) + SEPARATOR.join(
            [chain["top.qcow2"], chain["mid.qcow2"], chain["base.qcow2"]]),
        "top-into-base-empty": pre(1, 2) + SEPARATOR.join(
            [chain["top.qcow2"], chain["mid.qcow2"], chain["base.qcow2"]]),
        "mid-into-base-progress": pre(3, 1) + SEPARATOR.join(
            [chain["mid.qcow2"], chain["base.qcow2"]]),
        "into-raw": pre(1, 1) + SEPARATOR.join([chain["over-raw.qcow2"], chain["base.raw"]]),
        "snapshot-base": pre(0, 1) + SEPARATOR.join([chain["top.qcow2"],
                                                     img["qcow2-snapshot"]]),
        "into-vmdk": pre(0, 1) + SEPARATOR.join([chain["top.qcow2"], img["vmdk"]]),
    }
    write_corpus("commit", commit)


if __name__ == "__main__":
    main()
