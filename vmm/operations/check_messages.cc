#include "vmm/operations/check_messages.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "crates/probe/probe.h"
#include "vmm/base/text_format.h"
#include "vmm/transport/request_server.h"

namespace instar::vmm {
namespace {

using abi::FindingKind;

using ull = unsigned long long;
using ll = long long;

bool TextValid(const char* text, uint32_t length) {
  return length < abi::kSnapshotTextBytes && text[length] == '\0' &&
         std::strlen(text) == length;
}

}  // namespace

Status ValidateFinding(const abi::CheckFinding& f) {
  if (f.kind == 0 || f.kind > abi::kFindingKindMax) {
    return GuestFailed("check finding of unknown kind " + std::to_string(f.kind));
  }
  if ((f.flags & ~abi::kFindingRepairing) != 0) return GuestFailed("check finding has unknown flags");
  if (static_cast<FindingKind>(f.kind) == FindingKind::kOverlapCorruptEvent &&
      f.a >= abi::kMetadataKindCount) {
    return GuestFailed("check finding names unknown metadata");
  }
  if (static_cast<FindingKind>(f.kind) == FindingKind::kSnapshotTableUpdateFailed &&
      f.a >= abi::kSnapshotUpdateFailureCount) {
    return GuestFailed("check finding names an unknown snapshot table failure");
  }
  return Status::Ok();
}

Status ValidateSnapshotFinding(const abi::CheckSnapshotFinding& f) {
  if (f.magic != abi::kCheckSnapshotFindingMagic) return GuestFailed("snapshot finding has a bad magic");
  if (f.kind != static_cast<uint32_t>(abi::SnapshotFindingKind::kL1Unaligned) &&
      f.kind != static_cast<uint32_t>(abi::SnapshotFindingKind::kL1TooLarge)) {
    return GuestFailed("snapshot finding of unknown kind");
  }
  if (!TextValid(f.id, f.id_len) || !TextValid(f.name, f.name_len)) {
    return GuestFailed("snapshot finding has an unterminated or mis-sized string");
  }
  return Status::Ok();
}

std::string DescribeFinding(const abi::CheckFinding& f) {
  const ull a = f.a, b = f.b, c = f.c;
  const bool repairing = (f.flags & abi::kFindingRepairing) != 0;
  const char* error_or_repairing = repairing ? "Repairing" : "ERROR";
  switch (static_cast<FindingKind>(f.kind)) {
    case FindingKind::kLeakedCluster:
      return Format("Leaked cluster %lld refcount=%llu reference=%llu\n", static_cast<ll>(a), b, c);
    case FindingKind::kClusterRefcountError:
      return Format("ERROR cluster %lld refcount=%llu reference=%llu\n", static_cast<ll>(a), b, c);
    case FindingKind::kRepairingCluster:
      return Format("Repairing cluster %lld refcount=%llu reference=%llu\n", static_cast<ll>(a), b,
                    c);
    case FindingKind::kRegionPastEof:
      return Format("ERROR: counting reference for region exceeding the end of the file by one "
                    "cluster or more: offset 0x%llx size 0x%llx\n", a, b);
    case FindingKind::kRefcountOverflow:
      return Format("ERROR: overflow cluster offset=0x%llx\n", a) +
             "Use qemu-img amend to increase the refcount entry width or qemu-img convert to "
             "create a clean copy if the image cannot be opened for writing\n";
    case FindingKind::kL1ReservedBits:
      return Format("ERROR found L1 entry with reserved bits set: %llx\n", a);
    case FindingKind::kL2TableUnaligned:
      return Format("ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry corrupted\n", a);
    case FindingKind::kL2ReservedBits:
      return Format("ERROR found l2 entry with reserved bits set: %llx\n", a);
    case FindingKind::kCompressedCopied:
      return Format("ERROR: coffset=0x%llx: copied flag must never be set for compressed "
                    "clusters\n", a);
    case FindingKind::kCompressedWithBitmap:
      return Format("ERROR compressed cluster %d with non-zero subcluster allocation bitmap, "
                    "entry=0x%llx\n", static_cast<int>(a), b);
    case FindingKind::kSubclusterBitmapCorrupt:
      return Format("ERROR offset=%llx: Allocated cluster has corrupted subcluster allocation "
                    "bitmap\n", a);
    case FindingKind::kPreallocUnaligned:
      return Format("%s offset=%llx: Preallocated cluster is not properly aligned; L2 entry "
                    "corrupted.\n", b != 0 ? "Repairing" : "ERROR", a);
    case FindingKind::kDataUnaligned:
      return Format("ERROR offset=%llx: Data cluster is not properly aligned; L2 entry "
                    "corrupted.\n", a);
    case FindingKind::kUnallocatedWithBitmap:
      return "ERROR: Unallocated cluster has non-zero subcluster allocation map\n";
    case FindingKind::kReftableReservedBits:
      return Format("ERROR refcount table entry %lld has reserved bits set\n", static_cast<ll>(a));
    case FindingKind::kRefblockUnaligned:
      return Format("ERROR refcount block %lld is not cluster aligned; refcount table entry "
                    "corrupted\n", static_cast<ll>(a));
    case FindingKind::kRefblockOutsideImage:
      return Format("%s refcount block %lld is outside image\n", b != 0 ? "Repairing" : "ERROR",
                    static_cast<ll>(a));
    case FindingKind::kRefblockRefcount:
      return Format("ERROR refcount block %lld refcount=%llu\n", static_cast<ll>(a), b);
    case FindingKind::kCantGetRefcount:
      return Format("Can't get refcount for cluster %lld: Input/output error\n",
                    static_cast<ll>(a));
    case FindingKind::kRefblockOffsetCorruptEvent:
      if (c != 0) {
        return Format("qcow2: Marking image as corrupt: Refblock offset %#llx unaligned "
                      "(reftable index: %#llx); further corruption events will be suppressed\n",
                      a, b);
      }
      return Format("qcow2: Image is corrupt: Refblock offset %#llx unaligned (reftable index: "
                    "%#llx); further non-fatal corruption events will be suppressed\n", a, b);
    case FindingKind::kCopiedL2Table:
      return Format("%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%llx refcount=%llu\n",
                    error_or_repairing, static_cast<int>(a), b, c);
    case FindingKind::kCopiedDataCluster:
      return Format("%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu\n",
                    error_or_repairing, a, b);
    case FindingKind::kRebuilding: return "Rebuilding refcount structure\n";
    case FindingKind::kNeedRebuild: return "ERROR need to rebuild refcount structures\n";
    case FindingKind::kRebuiltStillBroken:
      return "ERROR rebuilt refcount structure is still broken\n";
    case FindingKind::kVmdkNoClusterOffset:
      return Format("ERROR: could not get cluster_offset for sector %lld\n", static_cast<ll>(a));
    case FindingKind::kVmdkPastEof:
      return Format("ERROR: cluster offset for sector %lld points after EOF\n", static_cast<ll>(a));
    case FindingKind::kResizeFailed:
      if (a != 0) return "ERROR could not resize image: Invalid argument\n";
      // qemu reports the file driver's error through error_report first.
      return "instar: Could not resize file: File too large\n"
             "ERROR could not resize image: File too large\n";
    case FindingKind::kOverlapCorruptEvent: {
      static const char* const kNames[abi::kMetadataKindCount] = {
          "qcow2_header",     "active L1 table",   "active L2 table",
          "refcount table",   "refcount block",    "snapshot table",
          "inactive L1 table", "inactive L2 table", "bitmap directory"};
      const char* name = a < abi::kMetadataKindCount ? kNames[a] : "unknown metadata";
      if (c != 0) {
        return Format("qcow2: Marking image as corrupt: Preventing invalid write on metadata "
                      "(overlaps with %s); further corruption events will be suppressed\n", name);
      }
      return Format("qcow2: Image is corrupt: Preventing invalid write on metadata (overlaps "
                    "with %s); further non-fatal corruption events will be suppressed\n", name);
    }
    case FindingKind::kSnapshotTableTooLarge:
      return Format("instar: ERROR snapshot table too large\n"
                    "You can force-remove all %u overhanging snapshots with qemu-img check -r "
                    "all\n", static_cast<unsigned>(a));
    case FindingKind::kSnapshotTableOffsetInvalid:
      return "instar: ERROR snapshot table offset invalid\n";
    case FindingKind::kBitmapsInconsistent:
      // qemu's own text, which ends without a newline: its next line continues this one.
      return "instar: warning: a program lacking bitmap support modified this file, so all "
             "bitmaps are now considered inconsistent\n"
             "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.";
    case FindingKind::kRebuildTooLarge:
      return Format("instar: rebuilding the refcount structure of %llu clusters needs more "
                    "memory for its new refcount table than the guest has\n", a);
    case FindingKind::kL1ReadError: return "ERROR: I/O error in check_refcounts_l1\n";
    case FindingKind::kL2ReadError: return "ERROR: I/O error in check_refcounts_l2\n";
    case FindingKind::kSnapshotsOverhanging:
      return Format("Discarding %u overhanging snapshots\n", static_cast<unsigned>(a));
    case FindingKind::kSnapshotExtraTooLarge:
      if (repairing) {
        return Format("Discarding too much extra metadata in snapshot table entry %d (%u > %u)\n",
                      static_cast<int>(a), static_cast<unsigned>(b), 1024u);
      }
      return Format("instar: ERROR failed to read the snapshot table: Too much extra metadata in "
                    "snapshot table entry %d\n"
                    "You can force-remove this extra metadata with qemu-img check -r all\n",
                    static_cast<int>(a));
    case FindingKind::kSnapshotTableTooBig:
      if (repairing) {
        return Format("Discarding %u overhanging snapshots (snapshot table is too big)\n",
                      static_cast<unsigned>(a));
      }
      return Format("instar: ERROR failed to read the snapshot table: Snapshot table is too big\n"
                    "You can force-remove all %u overhanging snapshots with qemu-img check -r "
                    "all\n", static_cast<unsigned>(a));
    case FindingKind::kSnapshotIncomplete:
      return Format("%s snapshot table entry %d is incomplete\n", error_or_repairing,
                    static_cast<int>(a));
    case FindingKind::kSnapshotTableReadError:
      return "instar: ERROR failed to read the snapshot table: Failed to read snapshot table: "
             "Input/output error\n";
    case FindingKind::kSnapshotTableUpdateFailed:
      switch (static_cast<abi::SnapshotUpdateFailure>(a)) {
        case abi::SnapshotUpdateFailure::kTooLarge:
          return "ERROR failed to update snapshot table: File too large\n";
        case abi::SnapshotUpdateFailure::kIoError:
          return "ERROR failed to update snapshot table: Input/output error\n";
      }
      return "ERROR failed to update snapshot table\n";
    case FindingKind::kL2EntryOverlap: return "ERROR: Overlap check failed\n";
    case FindingKind::kL2TableOverlap:
      return "ERROR: Could not write L2 table; metadata overlap check failed: Input/output "
             "error\n";
    case FindingKind::kRebuildWriteFailed:
      // qemu reports this through error_report: with the program name.
      return Format("instar: ERROR writing %s: Input/output error\n",
                    a == 0 ? "refblock" : "reftable");
  }
  return Format("unknown check finding %u\n", f.kind);
}

std::string DescribeSnapshotFinding(const abi::CheckSnapshotFinding& f) {
  const std::string id = SanitizeGuestText(std::string_view(f.id, f.id_len));
  const std::string name = SanitizeGuestText(std::string_view(f.name, f.name_len));
  switch (static_cast<abi::SnapshotFindingKind>(f.kind)) {
    case abi::SnapshotFindingKind::kL1Unaligned:
      return "ERROR snapshot " + id + " (" + name + ") " +
             Format("l1_offset=%#llx: L1 table is not cluster aligned; snapshot table entry "
                    "corrupted\n", static_cast<ull>(f.value));
    case abi::SnapshotFindingKind::kL1TooLarge:
      return "ERROR snapshot " + id + " (" + name + ") " +
             Format("l1_size=%#x: L1 table is too large; snapshot table entry corrupted\n",
                    static_cast<unsigned>(f.value));
  }
  return "unknown snapshot finding\n";
}

std::string DescribeCheckError(abi::CheckError error, uint64_t detail) {
  using abi::CheckError;
  const std::string d = std::to_string(detail);
  switch (error) {
    case CheckError::kOk: return "no error";
    case CheckError::kIoError: return "Could not read image: Input/output error";
    case CheckError::kBadConfig: return "the check operation did not understand its request";
    case CheckError::kEncrypted: return "encrypted images are not supported by instar";
    case CheckError::kExternalDataFile:
      return "images with an external data file are not supported by instar";
    case CheckError::kReftableTooLarge: return "Reference count table too large";
    case CheckError::kReftableInvalid: return "Reference count table offset invalid";
    case CheckError::kL1TooLarge: return "Active L1 table too large";
    case CheckError::kL1TooSmall: return "L1 table is too small";
    case CheckError::kL1Invalid: return "Active L1 table offset invalid";
    case CheckError::kImageTooBig: return "Image is too big";
    case CheckError::kVirtualSizeTooLarge:
      return "Could not refresh total sector count: File too large";
    case CheckError::kUnsupportedFormat: {
      const auto format = static_cast<probe::Format>(detail);
      const char* name = detail < probe::kFormatCount ? probe::FormatName(format) : "unknown";
      return std::string("Image format '") + name + "' is not supported by instar";
    }
    case CheckError::kVmdkBadHeader: return "Invalid VMDK sparse extent header";
    case CheckError::kScratchTooSmall:
      return "checking this image needs more guest memory than instar has (" + d +
             " clusters counted at once)";
    case CheckError::kNotSupportedByFormat: return "This image format does not support checks";
    case CheckError::kL1ReadFailed: return "Could not read L1 table: Input/output error";
    case CheckError::kQcow2HeaderRefused: return "the check guest refused the qcow2 header";
    case CheckError::kDataFileRawWithoutDataFile: return "data-file-raw requires a data file";
    case CheckError::kHasBackingFile:
      return "the check guest asked for the backing chain to be opened twice";
    case CheckError::kVmdkVersion3ReadOnly: return "VMDK version 3 must be read only";
    case CheckError::kVmdkSeparateExtents:
      return "VMDK images with separate extent files are not supported by instar check";
  }
  return "unknown check error " + std::to_string(static_cast<uint32_t>(error)) + " from the guest";
}

std::string DescribeCheckFailure(abi::CheckFailure failure) {
  switch (failure) {
    case abi::CheckFailure::kNone: return "Check failed";
    case abi::CheckFailure::kIoError: return "Check failed: Input/output error";
    case abi::CheckFailure::kInvalidArgument: return "Check failed: Invalid argument";
    case abi::CheckFailure::kNoSpace: return "Check failed: No space left on device";
    case abi::CheckFailure::kFileTooLarge: return "Check failed: File too large";
    case abi::CheckFailure::kNotPermitted: return "Check failed: Operation not permitted";
  }
  return "Check failed";
}

}  // namespace instar::vmm
