"""Every rule of the project goes through these macros (one load point).

- instar_crate: a pure, freestanding-safe library built twice: for the host (tests, fuzzers,
  host tools) as `name`, and for the guest as `name_guest`.
- instar_guest_library: guest-only support code (built freestanding only).
- instar_guest_binary: a freestanding guest program -> linked ELF with the generated linker
  script (size budget asserted at link time) -> flat .bin -> `name_image`, a host library that
  embeds the bytes with their SHA-256 so the host only ever loads guest code it built.
- instar_library / instar_binary / instar_test: host code with the project's warnings.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")
load(
    "//bazel:copts.bzl",
    "GUEST_COPTS",
    "HOST_COPTS",
    "SANITIZER_COPTS",
    "SANITIZER_LINKOPTS",
    "TEST_COPTS",
    "guest_linkopts",
)

def _guest_label(label):
    if label.startswith("@"):
        fail("guest code may only depend on this project's crates: " + label)
    if ":" in label:
        return label + "_guest"
    return label + ":" + label.split("/")[-1] + "_guest"

def instar_crate(name, srcs = [], hdrs = [], deps = [], visibility = None):
    cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        deps = deps,
        copts = HOST_COPTS + SANITIZER_COPTS,
        visibility = visibility,
    )
    cc_library(
        name = name + "_guest",
        srcs = srcs,
        hdrs = hdrs,
        deps = [_guest_label(d) for d in deps],
        copts = GUEST_COPTS,
        linkstatic = True,  # no shared object: guest code is never PIC
        visibility = visibility,
    )

def instar_guest_library(name, srcs = [], hdrs = [], deps = [], visibility = None):
    """Guest-only code; `deps` name crates (their guest builds are used). Always linked whole:
    it provides symbols the compiler references implicitly (memcpy, memset)."""
    cc_library(
        name = name + "_guest",
        srcs = srcs,
        hdrs = hdrs,
        deps = [_guest_label(d) for d in deps],
        copts = GUEST_COPTS,
        alwayslink = True,
        linkstatic = True,
        visibility = visibility,
    )

_REGIONS = {
    "operation": "OPERATION",
    "runtime": "RUNTIME",
}

def instar_guest_binary(name, srcs, deps = [], region = "operation", defines = [], visibility = None):
    """A flat guest binary for `region` ("operation" or "runtime"), plus `name_image`.
    `defines` select build variants of one source (e.g. the runtime's doorbell)."""
    if region not in _REGIONS:
        fail("region must be one of " + str(_REGIONS.keys()))
    prefix = _REGIONS[region]
    linker_script = name + ".ld"
    native.genrule(
        name = name + "_ld",
        srcs = ["//abi:memory_map.ld", "//bazel:guest.ld.in"],
        outs = [linker_script],
        cmd = ("(cat $(location //abi:memory_map.ld); " +
               "echo 'INSTAR_IMAGE_BASE = INSTAR_%s_BASE;'; " +
               "echo 'INSTAR_IMAGE_SIZE = INSTAR_%s_SIZE;'; " +
               "cat $(location //bazel:guest.ld.in)) > $@") % (prefix, prefix),
    )
    cc_binary(
        name = name + ".elf",
        srcs = srcs,
        deps = [_guest_label(d) for d in deps] + ["//crates/freestanding:freestanding_guest"],
        copts = GUEST_COPTS + ["-D" + d for d in defines],
        linkopts = guest_linkopts(":" + linker_script),
        additional_linker_inputs = [":" + linker_script],
        features = ["-pie", "-supports_start_end_lib"],
        visibility = visibility,
    )
    native.genrule(
        name = name + "_bin",
        srcs = [":" + name + ".elf"],
        outs = [name + ".bin"],
        cmd = "objcopy -O binary $< $@",
        visibility = visibility,
    )
    native.genrule(
        name = name + "_image_src",
        srcs = [":" + name + ".bin"],
        outs = [name + "_image.cc", name + "_image.h"],
        cmd = ("$(location //bazel:embed_guest_image) %s %s $< $(location %s_image.cc) " +
               "$(location %s_image.h)") % (name, native.package_name() + "/" + name + "_image.h", name, name),
        tools = ["//bazel:embed_guest_image"],
    )
    cc_library(
        name = name + "_image",
        srcs = [name + "_image.cc"],
        hdrs = [name + "_image.h"],
        deps = ["//vmm/images:embedded_image"],
        copts = HOST_COPTS + SANITIZER_COPTS,
        visibility = visibility,
    )

def instar_library(name, copts = [], **kwargs):
    cc_library(name = name, copts = HOST_COPTS + SANITIZER_COPTS + copts, **kwargs)

def instar_binary(name, copts = [], linkopts = [], **kwargs):
    cc_binary(
        name = name,
        copts = HOST_COPTS + SANITIZER_COPTS + copts,
        linkopts = linkopts + SANITIZER_LINKOPTS,
        **kwargs
    )

def instar_test(name, deps = [], copts = [], linkopts = [], size = "small", **kwargs):
    cc_test(
        name = name,
        size = size,
        deps = deps + ["@gtest_system//:gtest_main"],
        copts = TEST_COPTS + SANITIZER_COPTS + copts,
        linkopts = linkopts + SANITIZER_LINKOPTS,
        **kwargs
    )

def instar_sh_test(name, srcs, data = [], size = "medium", **kwargs):
    """A shell test against the built CLI (tests/lib/testlib.sh gives $INSTAR and helpers).
    Needs /dev/kvm and qemu-img (installed by tools/setup)."""
    native.sh_test(
        name = name,
        size = size,
        srcs = srcs,
        data = data + ["//tools/cli:instar", "//tests/lib:testlib.sh"],
        tags = kwargs.pop("tags", []) + ["requires-kvm"],
        **kwargs
    )

def instar_fuzz_test(name, srcs, corpus, deps = [], **kwargs):
    """A libFuzzer target. Under --config=fuzz it is a fuzzer (tools/fuzz/run_fuzzers.sh runs
    it for a time budget); otherwise it replays its checked-in corpus (`corpus`: a directory
    in this package holding seeds and minimized crashes) as a regression test."""
    files = native.glob([corpus + "/**"])
    cc_test(
        name = name,
        srcs = srcs,
        deps = deps + select({
            "//bazel:sanitize_fuzz": [],
            "//conditions:default": ["//tools/fuzz:replay_main"],
        }),
        copts = TEST_COPTS + SANITIZER_COPTS,
        linkopts = SANITIZER_LINKOPTS + select({
            "//bazel:sanitize_fuzz": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = files,
        args = ["$(rootpath %s)" % f for f in files],
        size = "small",
        tags = kwargs.pop("tags", []) + ["fuzz"],
        **kwargs
    )
