#include "vmm/operations/rebase_messages.h"

#include <cinttypes>
#include <cstdio>

#include "crates/probe/probe.h"
#include "vmm/base/text_format.h"

namespace instar::vmm {
namespace {

RebaseMessage Line(std::string text, bool while_opening = false) {
  return RebaseMessage{{std::move(text)}, while_opening};
}

}  // namespace

RebaseMessage DescribeRebaseError(abi::RebaseError error, uint64_t detail,
                                  const std::string& backing, uint32_t new_chain_first) {
  using abi::RebaseError;
  const std::string d = std::to_string(detail);
  const std::string change = "Could not change the backing file to '" + backing + "': ";
  const bool open = true;
  switch (error) {
    case RebaseError::kOk: return Line("no error");
    case RebaseError::kIoError: return Line("error while reading image metadata: Input/output error");
    case RebaseError::kBadConfig: return Line("the rebase operation did not understand its request");
    case RebaseError::kUnsupportedFormat: {
      const char* name = detail < probe::kFormatCount
                             ? probe::FormatName(static_cast<probe::Format>(detail))
                             : "unknown";
      return Line(std::string("Image format '") + name + "' is not supported by instar", open);
    }
    case RebaseError::kChainUnreadable:
      return Line(detail >= new_chain_first
                      ? "error while reading from new backing file: Input/output error"
                      : "error while reading from old backing file: Input/output error");
    case RebaseError::kHeaderNoSpace: return Line(change + "No space left in the file header");
    case RebaseError::kChangeNotSupported: return Line(change + "Operation not supported");
    case RebaseError::kOverlayCorrupt:
      return Line("image is corrupt: bad metadata at offset " + Hex(detail) +
                  "; nothing was changed");
    case RebaseError::kBackingPathTooLong: return Line(change + "Invalid argument");
    case RebaseError::kScratchTooSmall:
      return Line("the image's metadata for this rebase does not fit instar's guest memory");
    case RebaseError::kRefcountExhausted:
      return Line("qcow2 image is corrupt: a refcount would overflow its width (cluster " + d +
                  "); run 'qemu-img check'");
    case RebaseError::kDescriptorTooLarge: return Line(change + "No space left in the file header");
    case RebaseError::kParseFailed:
      return Line("the rebase guest could not parse the image (parser error " + d + ")", open);
    case RebaseError::kInternalOverflow:
      return Line("an offset in the image overflows 64 bits (" + Hex(detail) +
                  "); nothing was changed");
    case RebaseError::kImageCorruptFlag:
      return Line("qcow2: Image is corrupt; cannot be opened read/write", open);
    case RebaseError::kDirtyImage:
      return Line("the image is marked dirty (lazy refcounts); instar does not repair "
                  "refcounts: run 'qemu-img check -r all' on it first", open);
    case RebaseError::kEncrypted: return Line("instar cannot rebase encrypted images", open);
    case RebaseError::kRawExternalData: return Line(change + "Invalid argument");
    case RebaseError::kQcow2HeaderRefused:
      return Line("the rebase guest refused the qcow2 header (host error)");
    case RebaseError::kVmdkBadHeader: return Line("Invalid VMDK sparse header (" + d + ")", open);
    case RebaseError::kVmdkBadDescriptor:
      return Line("Invalid VMDK image descriptor (line " + d + ")", open);
    case RebaseError::kVmdkUnsupported:
      return Line(change + "instar rebases monolithicSparse VMDK images only");
    case RebaseError::kExternalDataFile:
      return Line("instar cannot safely rebase images with an external data file (use -u)", open);
    case RebaseError::kExtendedL2:
      return Line("instar cannot safely rebase images with extended L2 entries (use -u)", open);
    case RebaseError::kWriteFailed:
      return Line(detail == 0 ? change + "Input/output error"
                              : "Error while writing to COW image: Input/output error");
  }
  return Line("unknown rebase error " + std::to_string(static_cast<uint32_t>(error)) +
              " from the guest");
}

}  // namespace instar::vmm
