#include "crates/probe/probe.h"

#include "crates/base/endian.h"
#include "crates/qcow2/header.h"
#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::probe {
namespace {

bool StartsWith(base::ByteView head, uint64_t offset, const char* text, uint64_t n) {
  if (!head.Has(offset, n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    if (head.data()[offset + i] != static_cast<uint8_t>(text[i])) return false;
  }
  return true;
}

}  // namespace

Format ProbeFormat(base::ByteView head) {
  uint32_t be = 0, le = 0;
  if (head.Be32(0, &be) && be == qcow2::kMagic) {
    uint32_t version = 0;
    head.Be32(4, &version);
    // qemu: version 1 is qcow, 2 and above qcow2 (a newer version then fails its open);
    // version 0 is nobody's, so the file probes as raw.
    if (version >= 2) return Format::kQcow2;
    if (version == 1) return Format::kQcow1;
  }
  if (head.Le32(0, &le)) {
    if (le == vmdk::kSparseMagic) return Format::kVmdk;
    if (le == 0x44574F43) return Format::kVmdk;  // "COWD": VMware 3 sparse
    if (le == 0x00444551) return Format::kQed;   // "QED\0"
  }
  if (vmdk::LooksLikeDescriptor(head)) return Format::kVmdk;
  if (head.Le32(0x40, &le) && le == 0xBEDA107F) return Format::kVdi;
  if (StartsWith(head, 0, "conectix", 8)) return Format::kVpc;
  if (StartsWith(head, 0, "vhdxfile", 8)) return Format::kVhdx;
  if (StartsWith(head, 0, "LUKS\xba\xbe", 6)) return Format::kLuks;
  if (StartsWith(head, 0, "WithoutFreeSpace", 16) || StartsWith(head, 0, "WithouFreSpacExt", 16)) {
    return Format::kParallels;
  }
  if (StartsWith(head, 0, "Bochs Virtual HD Image", 22)) return Format::kBochs;
  if (StartsWith(head, 0, "#!/bin/sh\n#V2.0 Format\n", 23)) return Format::kCloop;
  return Format::kRaw;
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kRaw: return "raw";
    case Format::kQcow2: return "qcow2";
    case Format::kVmdk: return "vmdk";
    case Format::kQcow1: return "qcow";
    case Format::kVdi: return "vdi";
    case Format::kVpc: return "vpc";
    case Format::kVhdx: return "vhdx";
    case Format::kQed: return "qed";
    case Format::kLuks: return "luks";
    case Format::kParallels: return "parallels";
    case Format::kCloop: return "cloop";
    case Format::kBochs: return "bochs";
  }
  return "unknown";
}

}  // namespace instar::probe
