"""Compiler and linker flags, in one place: host code, freestanding guest code, tests."""

# Our own host code: strict warnings, errors.
HOST_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
]

# Tests link GoogleTest, whose macros trip some of -Wextra.
TEST_COPTS = HOST_COPTS + ["-Wno-sign-compare"]

# Freestanding guest code: no libc, no exceptions/RTTI/unwind tables, no SSE (the guest never
# enables CR4.OSFXSR state saving it relies on), no PIC, no red zone (the ring-0 stubs run on
# their own stack, but keep the ABI conservative), no stack protector (no TLS canary).
GUEST_COPTS = [
    "-O2",
    "-m64",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-exceptions",
    "-fno-rtti",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-stack-protector",
    "-fno-pie",
    "-fno-pic",
    "-fno-threadsafe-statics",
    "-mno-red-zone",
    "-mcmodel=small",
    "-mgeneral-regs-only",
    "-fcf-protection=none",
    "-ffunction-sections",
    "-fdata-sections",
    "-U_FORTIFY_SOURCE",
    "-DINSTAR_FREESTANDING=1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
]

def guest_linkopts(linker_script):
    return [
        "-nostdlib",
        "-static",
        "-no-pie",
        "-fuse-ld=bfd",
        "-Wl,--build-id=none",
        "-Wl,--gc-sections",
        "-Wl,--no-warn-rwx-segments",
        "-Wl,-T,$(location %s)" % linker_script,
    ]

_SANITIZE = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-O1",
]

# Host-only instrumentation for --config=asan and --config=fuzz (see .bazelrc).
SANITIZER_COPTS = select({
    "//bazel:sanitize_asan": _SANITIZE,
    "//bazel:sanitize_fuzz": _SANITIZE + ["-fsanitize=fuzzer-no-link"],
    "//conditions:default": [],
})

SANITIZER_LINKOPTS = select({
    "//bazel:sanitize_asan": ["-fsanitize=address,undefined", "-fsanitize-link-c++-runtime"],
    "//bazel:sanitize_fuzz": ["-fsanitize=address,undefined", "-fsanitize-link-c++-runtime"],
    "//conditions:default": [],
})
