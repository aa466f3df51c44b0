// The errors of crates/chain_read: why an image (or a chain of them) cannot be opened or read.
// Each carries a `detail` (base::Error::detail) documented per code. Append-only: callers map
// these 1:1 onto their ABI error sets. Header-only, freestanding; no allocation.
#pragma once

namespace instar::chain_read {

enum class ReadError {
  kIoError,               // the reader failed; detail: file offset of the failed read
  kCorrupt,               // metadata points where it must not (past the end of the file,
                          // unaligned, into the header, reserved bits); detail: the offending
                          // file offset (or the raw entry when no offset is meaningful)
  kBadCompressedData,     // a compressed cluster/grain does not inflate to what the format
                          // requires (qemu: EIO/EINVAL); detail: its file offset
  kQcow2HeaderInvalid,    // qcow2::ParseHeader refused it; detail: the qcow2::HeaderError value
  kQcow2Encrypted,        // crypt_method != 0; detail: the method
  kQcow2ExternalDataFile, // the external-data-file feature bit is set
  kQcow2ZstdCompression,  // a compressed cluster of a zstd image was met (zstd is not
                          // decoded; zstd images without compressed clusters read fine);
                          // detail: the file offset of its L2 entry
  kVmdkHeaderInvalid,     // vmdk::ParseSparseHeader refused the header (or the footer's
                          // copy); detail: the vmdk::SparseHeaderError value
  kVmdkMultiFile,         // a text descriptor (flat, split or any multi-file vmdk): only
                          // single-file hosted sparse extents are read
  kArenaTooSmall,         // the budget or arena cannot hold the minimum; detail: bytes needed
  kOutOfRange,            // a request past the layer's virtual size (a caller bug); detail:
                          // the guest offset
  kTooManyLayers,         // a chain of more than kMaxLayers layers (or none); detail: the
                          // count
  kVmdkBadFooter,         // streamOptimized with the grain directory at the end, and the
                          // footer or end-of-stream marker is not where qemu looks; detail:
                          // the footer's file offset
};

}  // namespace instar::chain_read
