import sys, struct
# Moves a streamOptimized vmdk's grain directory pointer to a footer, as VMware's streaming
# writers do: the header says "at end", and a footer marker, the real header and an
# end-of-stream marker close the file.
src, dst = sys.argv[1], sys.argv[2]
data = bytearray(open(src, 'rb').read())
header = bytes(data[:512])
data[56:64] = struct.pack('<Q', 0xFFFFFFFFFFFFFFFF)
data += b'\0' * (-len(data) % 512)
data += struct.pack('<QII', 0, 0, 3) + b'\0' * 496
data += header
data += b'\0' * 512
open(dst, 'wb').write(data)
