# Helpers for the info differential tests (sourced after tests/lib/testlib.sh).

# patch_field FILE OFFSET STRUCT-FORMAT VALUE: overwrites one field (Python struct format,
# e.g. '>I' for a big-endian u32) at OFFSET.
patch_field() {
  python3 - "$@" <<'PY'
import struct, sys
path, offset, fmt, value = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], int(sys.argv[4], 0)
data = bytearray(open(path, 'rb').read())
end = offset + struct.calcsize(fmt)
if end > len(data):
    data.extend(b'\0' * (end - len(data)))
struct.pack_into(fmt, data, offset, value)
open(path, 'wb').write(data)
PY
}

# compare_info FILE [ARGS...]: human and JSON output of `info` against qemu-img.
compare_info() {
  local f="$1"
  shift
  compare_with_qemu info "$@" "$f"
  compare_with_qemu info --output=json "$@" "$f"
}

# expect_refusal NAME PATTERN COMMAND...: instar-only check that COMMAND exits 1 and its
# stderr matches PATTERN (for policies qemu-img does not have).
expect_refusal() {
  local name="$1" pattern="$2"
  shift 2
  CHECKS=$((CHECKS + 1))
  local err rc
  err="$("$@" 2>&1 >/dev/null)"
  rc=$?
  if [ "$rc" != 1 ] || ! printf '%s' "$err" | grep -q -- "$pattern"; then
    echo "expected refusal '$pattern' from '$*', got exit $rc: $err" >&2
    fail "$name"
  fi
}

# quietly COMMAND...: runs COMMAND with its stdout discarded (for `check`).
quietly() { "$@" >/dev/null; }

# ext_data FILE TYPE: the file offset of the data of the qcow2 header extension TYPE (hex).
ext_data() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
want = int(sys.argv[2], 0)
off = struct.unpack('>I', d[100:104])[0]
while True:
    t, l = struct.unpack('>II', d[off:off + 8])
    if t == want:
        print(off + 8)
        break
    if t == 0:
        sys.exit('no such extension')
    off += 8 + ((l + 7) & ~7)
PY
}

# be_at FILE OFFSET FORMAT: the value of one field (for offsets stored in the image).
be_at() {
  python3 -c 'import struct,sys; print(struct.unpack_from(sys.argv[3], open(sys.argv[1],"rb").read(), int(sys.argv[2]))[0])' "$@"
}
