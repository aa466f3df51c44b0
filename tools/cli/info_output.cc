#include "tools/cli/info_output.h"

#include <cstdarg>
#include <cstdio>
#include <ctime>

#include "tools/cli/size_format.h"
#include "vmm/base/text_format.h"
#include "vmm/chain/path_policy.h"

namespace instar::cli {
namespace {

using abi::ImageFormat;

const char* FormatName(uint32_t format) {
  switch (static_cast<ImageFormat>(format)) {
    case ImageFormat::kRaw: return "raw";
    case ImageFormat::kQcow2: return "qcow2";
    case ImageFormat::kVmdk: return "vmdk";
    case ImageFormat::kAuto: break;
  }
  return "unknown";
}

bool IsFormat(const abi::InfoResult& r, ImageFormat f) {
  return r.format == static_cast<uint32_t>(f);
}

std::string BackingFile(const abi::InfoResult& r) { return {r.backing_file, r.backing_file_len}; }

// vmdk has no backing-format field: qemu reports its parent as vmdk.
std::string BackingFormat(const abi::InfoResult& r) {
  if (IsFormat(r, ImageFormat::kVmdk)) return "vmdk";
  if (r.flags & abi::kInfoHasBackingFormat) return {r.backing_format, r.backing_format_len};
  return "";
}

// qemu's cipher algorithm name: the cipher and its key size in bits (sm4 has one size).
std::string CipherAlgorithm(const vmm::LuksInfo& l) {
  if (l.cipher_name == "sm4") return "sm4";
  return l.cipher_name + "-" + std::to_string(vmm::LuksCipherKeyBytes(l) * 8);
}

QValue LuksValue(const vmm::LuksInfo& l) {
  const vmm::LuksMode mode = vmm::SplitLuksMode(l);
  QValue v = QValue::Dict();
  v.Put("format", QValue::String("luks"));
  v.Put("cipher-alg", QValue::String(CipherAlgorithm(l)));
  v.Put("cipher-mode", QValue::String(mode.mode));
  v.Put("ivgen-alg", QValue::String(mode.ivgen));
  if (!mode.ivgen_hash.empty()) v.Put("ivgen-hash-alg", QValue::String(mode.ivgen_hash));
  v.Put("hash-alg", QValue::String(l.hash_spec));
  v.Put("payload-offset", QValue::Uint(l.payload_offset));
  v.Put("master-key-iters", QValue::Uint(l.master_key_iterations));
  v.Put("uuid", QValue::String(l.uuid));
  QValue slots = QValue::List();
  for (const vmm::LuksSlotInfo& s : l.slots) {
    QValue slot = QValue::Dict();
    slot.Put("active", QValue::Bool(s.active));
    if (s.active) slot.Put("iters", QValue::Uint(s.iterations));
    if (s.active) slot.Put("stripes", QValue::Uint(s.stripes));
    slot.Put("key-offset", QValue::Uint(s.key_offset));
    slots.Append(std::move(slot));
  }
  v.Put("slots", std::move(slots));
  return v;
}

QValue Qcow2Data(const vmm::ImageInfo& info) {
  const abi::InfoResult& r = info.result;
  const bool v3 = r.format_version >= 3;
  QValue d = QValue::Dict();
  d.Put("compat", QValue::String(v3 ? "1.1" : "0.10"));
  if (info.records.data_file) {
    d.Put("data-file", QValue::String(*info.records.data_file));
    d.Put("data-file-raw", QValue::Bool(r.flags & abi::kInfoDataFileRaw));
  }
  if (v3) {
    d.Put("extended-l2", QValue::Bool(r.flags & abi::kInfoExtendedL2));
    d.Put("lazy-refcounts", QValue::Bool(r.flags & abi::kInfoLazyRefcounts));
    d.Put("corrupt", QValue::Bool(r.flags & abi::kInfoCorrupt));
  }
  d.Put("refcount-bits", QValue::Uint(r.refcount_bits));
  if (r.encryption_method == 1) {
    d.Put("encrypt", QValue::Dict().Put("format", QValue::String("aes")));
  } else if (r.encryption_method == 2 && info.records.luks) {
    d.Put("encrypt", LuksValue(*info.records.luks));
  }
  if (!info.records.bitmaps.empty()) {
    QValue bitmaps = QValue::List();
    for (const vmm::BitmapInfo& b : info.records.bitmaps) {
      QValue flags = QValue::List();
      if (b.in_use) flags.Append(QValue::String("in-use"));
      if (b.auto_) flags.Append(QValue::String("auto"));
      QValue bitmap = QValue::Dict();
      bitmap.Put("name", QValue::String(b.name));
      bitmap.Put("granularity", QValue::Uint(uint64_t{1} << b.granularity_bits));
      bitmap.Put("flags", std::move(flags));
      bitmaps.Append(std::move(bitmap));
    }
    d.Put("bitmaps", std::move(bitmaps));
  }
  d.Put("compression-type", QValue::String(r.compression_type == 1 ? "zstd" : "zlib"));
  return d;
}

QValue VmdkData(const NamedImageInfo& image) {
  const vmm::ImageInfo& info = *image.info;
  const abi::InfoResult& r = info.result;
  QValue d = QValue::Dict();
  d.Put("create-type", QValue::String(info.records.vmdk_create_type.value_or("")));
  d.Put("cid", QValue::Uint(r.vmdk_cid));
  d.Put("parent-cid", QValue::Uint(r.vmdk_parent_cid));
  QValue extents = QValue::List();
  for (size_t i = 0; i < info.records.extents.size(); ++i) {
    const vmm::VmdkExtentInfo& e = info.records.extents[i];
    QValue x = QValue::Dict();
    x.Put("filename", QValue::String(i < info.extent_paths.size() ? info.extent_paths[i]
                                                                  : image.filename));
    x.Put("format", QValue::String(e.type));
    x.Put("virtual-size", QValue::Uint(e.sectors * 512));
    if (e.sparse) x.Put("cluster-size", QValue::Uint(e.cluster_size));
    if (e.compressed) x.Put("compressed", QValue::Bool(true));
    extents.Append(std::move(x));
  }
  d.Put("extents", std::move(extents));
  return d;
}

// The "data" of format-specific, or false when the format has none.
bool FormatSpecific(const NamedImageInfo& image, std::string* type, QValue* data) {
  const abi::InfoResult& r = image.info->result;
  if (IsFormat(r, ImageFormat::kQcow2)) {
    *type = "qcow2";
    *data = Qcow2Data(*image.info);
    return true;
  }
  if (IsFormat(r, ImageFormat::kVmdk) && image.info->records.vmdk_create_type) {
    *type = "vmdk";
    *data = VmdkData(image);
    return true;
  }
  return false;
}

QValue SnapshotValue(const vmm::SnapshotInfo& s) {
  QValue v = QValue::Dict();
  v.Put("id", QValue::String(s.id));
  v.Put("name", QValue::String(s.name));
  v.Put("vm-state-size", QValue::Uint(s.vm_state_size));
  v.Put("date-sec", QValue::Uint(s.date_sec));
  v.Put("date-nsec", QValue::Uint(s.date_nsec));
  v.Put("vm-clock-sec", QValue::Uint(s.vm_clock_nsec / 1000000000));
  v.Put("vm-clock-nsec", QValue::Uint(s.vm_clock_nsec % 1000000000));
  if (s.icount) v.Put("icount", QValue::Uint(*s.icount));
  return v;
}

std::string SnapshotLine(const vmm::SnapshotInfo& s) {
  char date[64] = "";
  const time_t t = s.date_sec;
  struct tm tm {};
  if (localtime_r(&t, &tm) == nullptr ||
      std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
    date[0] = '\0';
  }
  const uint64_t secs = s.vm_clock_nsec / 1000000000;
  const std::string clock =
      Format("%02llu:%02llu:%02llu.%03llu", static_cast<unsigned long long>(secs / 3600),
             static_cast<unsigned long long>((secs / 60) % 60),
             static_cast<unsigned long long>(secs % 60),
             static_cast<unsigned long long>((s.vm_clock_nsec / 1000000) % 1000));
  const std::string icount = s.icount ? std::to_string(*s.icount) : "";
  return Format("%-9s %-16s %8s", s.id.c_str(), s.name.c_str(),
                HumanSize(s.vm_state_size).c_str()) +
         Format("%20s%13s%11s\n", date, clock.c_str(), icount.c_str());
}

}  // namespace

QValue ImageInfoValue(const NamedImageInfo& image) {
  const vmm::ImageInfo& info = *image.info;
  const abi::InfoResult& r = info.result;
  QValue v = QValue::Dict();
  v.Put("filename", QValue::String(image.filename));
  v.Put("format", QValue::String(FormatName(r.format)));
  v.Put("dirty-flag", QValue::Bool(r.flags & abi::kInfoDirty));
  v.Put("actual-size", QValue::Uint(info.actual_size));
  v.Put("virtual-size", QValue::Uint(r.virtual_size));
  if (r.cluster_size != 0) v.Put("cluster-size", QValue::Uint(r.cluster_size));
  if (r.flags & abi::kInfoEncrypted) v.Put("encrypted", QValue::Bool(true));
  if (r.flags & abi::kInfoHasBackingFile) {
    const std::string backing = BackingFile(r);
    v.Put("backing-filename", QValue::String(backing));
    v.Put("full-backing-filename", QValue::String(vmm::CombinePath(image.filename, backing)));
    const std::string format = BackingFormat(r);
    if (!format.empty()) v.Put("backing-filename-format", QValue::String(format));
  }
  if (!info.records.snapshots.empty()) {
    QValue list = QValue::List();
    for (const vmm::SnapshotInfo& s : info.records.snapshots) list.Append(SnapshotValue(s));
    v.Put("snapshots", std::move(list));
  }
  std::string type;
  QValue data;
  if (FormatSpecific(image, &type, &data)) {
    QValue specific = QValue::Dict();
    specific.Put("type", QValue::String(type));
    specific.Put("data", std::move(data));
    v.Put("format-specific", std::move(specific));
  }
  return v;
}

std::string InfoHuman(const NamedImageInfo& image) {
  const vmm::ImageInfo& info = *image.info;
  const abi::InfoResult& r = info.result;
  std::string out;
  out += "image: " + image.filename + "\n";
  out += std::string("file format: ") + FormatName(r.format) + "\n";
  out += "virtual size: " + HumanSize(r.virtual_size) + " (" + std::to_string(r.virtual_size) +
         " bytes)\n";
  out += "disk size: " + HumanSize(info.actual_size) + "\n";
  if (r.flags & abi::kInfoEncrypted) out += "encrypted: yes\n";
  if (r.cluster_size != 0) out += "cluster_size: " + std::to_string(r.cluster_size) + "\n";
  if (r.flags & abi::kInfoDirty) out += "cleanly shut down: no\n";
  if (r.flags & abi::kInfoHasBackingFile) {
    const std::string backing = BackingFile(r);
    const std::string full = vmm::CombinePath(image.filename, backing);
    out += "backing file: " + backing;
    if (full != backing) out += " (actual path: " + full + ")";
    out += "\n";
    const std::string format = BackingFormat(r);
    if (!format.empty()) out += "backing file format: " + format + "\n";
  }
  if (!info.records.snapshots.empty()) {
    out += "Snapshot list:\n";
    out += Format("%-9s %-16s %8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
                  "ICOUNT");
    for (const vmm::SnapshotInfo& s : info.records.snapshots) out += SnapshotLine(s);
  }
  std::string type;
  QValue data;
  if (FormatSpecific(image, &type, &data)) {
    out += "Format specific information:\n";
    data.DumpHuman(1, &out);
  }
  return out;
}

std::string InfoJson(const NamedImageInfo& image) {
  return ImageInfoValue(image).ToQemuJson() + "\n";
}

std::string ChainHuman(const std::vector<NamedImageInfo>& chain) {
  std::string out;
  for (size_t i = 0; i < chain.size(); ++i) {
    if (i != 0) out += "\n";
    out += InfoHuman(chain[i]);
  }
  return out;
}

std::string ChainJson(const std::vector<NamedImageInfo>& chain) {
  QValue list = QValue::List();
  for (const NamedImageInfo& image : chain) list.Append(ImageInfoValue(image));
  return list.ToQemuJson() + "\n";
}

}  // namespace instar::cli
