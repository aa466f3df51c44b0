// Inflate: a DEFLATE decoder (RFC 1951) with the optional zlib wrapper (RFC 1950), written
// from the RFCs, for qcow2 compressed clusters (raw deflate, as qemu writes with windowBits
// -12) and VMDK streamOptimized grains (zlib streams). Output is bounded by the caller's
// buffer; every input byte is hostile (any bit pattern yields a result or an error, never an
// out-of-bounds access); all work is bounded by input and output sizes. The decoder keeps no
// history outside `out` (back-references reach into what it already wrote there), so it
// needs no window. Freestanding; no allocation (its Huffman tables live on the stack, ~3 KiB).
#pragma once

#include <stdint.h>

#include "crates/base/bytes.h"
#include "crates/base/result.h"

namespace instar::chain_read {

enum class InflateError {
  kTruncated,        // the input ended inside the stream
  kBadBlockType,     // BTYPE 3
  kBadStoredLength,  // LEN != ~NLEN
  kBadCodeLengths,   // an over-subscribed or incomplete Huffman code, or bad repeat codes
  kBadSymbol,        // a literal/length symbol 286/287 or distance 30/31
  kBadDistance,      // a back-reference before the start of the output
  kOutputFull,       // the stream wants to write more than `capacity` bytes
  kBadZlibHeader,    // CMF/FLG check, method not 8, window > 32 KiB, or a preset dictionary
  kBadChecksum,      // the Adler-32 trailer does not match
};

enum class InflateWrapper {
  kRaw,   // bare DEFLATE blocks (qcow2)
  kZlib,  // 2-byte header, DEFLATE blocks, Adler-32 (vmdk; zlib's uncompress())
};

// What the decoder stops at.
enum class InflateUntil {
  kStreamEnd,   // the final block ends (and, for kZlib, the checksum matches); output may be
                // shorter than capacity (zlib's uncompress(): vmdk grains)
  kOutputFull,  // exactly `capacity` bytes are written; the rest of the input, even a
                // broken stream, is ignored, and a stream that ends earlier is kTruncated
                // (qemu's qcow2 decompression: inflate(Z_FINISH) must fill the cluster)
};

struct InflateResult {
  uint64_t written = 0;   // bytes stored in `out`
  uint64_t consumed = 0;  // input bytes used (rounded up to whole bytes)
};

base::Result<InflateResult, InflateError> Inflate(base::ByteView in, InflateWrapper wrapper,
                                                  InflateUntil until, uint8_t* out,
                                                  uint64_t capacity);

}  // namespace instar::chain_read
