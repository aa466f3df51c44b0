#include "tools/cli/info_output.h"

#include <string_view>

#include "nlohmann/json.hpp"
#include "tools/cli/size_format.h"

namespace instar::cli {
namespace {

using abi::ImageFormat;
using Json = nlohmann::ordered_json;

const char* FormatName(uint32_t format) {
  switch (static_cast<ImageFormat>(format)) {
    case ImageFormat::kRaw: return "raw";
    case ImageFormat::kQcow2: return "qcow2";
    case ImageFormat::kVmdk: return "vmdk";
    case ImageFormat::kAuto: break;
  }
  return "unknown";
}

std::string BackingFile(const abi::InfoResult& r) {
  return {r.backing_file, r.backing_file_len};
}

// qemu resolves a relative backing name against the directory of the image as named.
std::string FullBackingFile(const std::string& filename, const std::string& backing) {
  if (backing.empty() || backing[0] == '/') return backing;
  const size_t slash = filename.rfind('/');
  if (slash == std::string::npos) return backing;
  return filename.substr(0, slash + 1) + backing;
}

const char* Bool(bool v) { return v ? "true" : "false"; }

}  // namespace

std::string InfoHuman(const std::string& filename, const vmm::ImageInfo& info) {
  const abi::InfoResult& r = info.result;
  std::string out;
  out += "image: " + filename + "\n";
  out += std::string("file format: ") + FormatName(r.format) + "\n";
  out += "virtual size: " + HumanSize(r.virtual_size) + " (" + std::to_string(r.virtual_size) +
         " bytes)\n";
  out += "disk size: " + HumanSize(info.actual_size) + "\n";
  if (r.cluster_size != 0) out += "cluster_size: " + std::to_string(r.cluster_size) + "\n";
  if (r.flags & abi::kInfoHasBackingFile) {
    const std::string backing = BackingFile(r);
    const std::string full = FullBackingFile(filename, backing);
    out += "backing file: " + backing;
    if (full != backing) out += " (actual path: " + full + ")";
    out += "\n";
    if (r.flags & abi::kInfoHasBackingFormat) {
      out += std::string("backing file format: ") + r.backing_format + "\n";
    }
  }
  if (static_cast<ImageFormat>(r.format) == ImageFormat::kQcow2) {
    out += "Format specific information:\n";
    out += std::string("    compat: ") + (r.format_version >= 3 ? "1.1" : "0.10") + "\n";
    out += std::string("    compression type: ") + (r.compression_type == 1 ? "zstd" : "zlib") +
           "\n";
    if (r.format_version >= 3) {
      out += std::string("    lazy refcounts: ") + Bool(r.flags & abi::kInfoLazyRefcounts) + "\n";
    }
    out += "    refcount bits: " + std::to_string(r.refcount_bits) + "\n";
    if (r.format_version >= 3) {
      out += std::string("    corrupt: ") + Bool(r.flags & abi::kInfoCorrupt) + "\n";
      out += std::string("    extended l2: ") + Bool(r.flags & abi::kInfoExtendedL2) + "\n";
    }
  }
  return out;
}

std::string InfoJson(const std::string& filename, const vmm::ImageInfo& info) {
  const abi::InfoResult& r = info.result;
  const bool has_backing = (r.flags & abi::kInfoHasBackingFile) != 0;
  Json j;
  if (has_backing && (r.flags & abi::kInfoHasBackingFormat)) {
    j["backing-filename-format"] = std::string(r.backing_format);
  }
  j["virtual-size"] = r.virtual_size;
  j["filename"] = filename;
  if (r.cluster_size != 0) j["cluster-size"] = r.cluster_size;
  j["format"] = FormatName(r.format);
  j["actual-size"] = info.actual_size;
  if (static_cast<ImageFormat>(r.format) == ImageFormat::kQcow2) {
    Json data;
    data["compat"] = r.format_version >= 3 ? "1.1" : "0.10";
    data["compression-type"] = r.compression_type == 1 ? "zstd" : "zlib";
    if (r.format_version >= 3) data["lazy-refcounts"] = (r.flags & abi::kInfoLazyRefcounts) != 0;
    data["refcount-bits"] = r.refcount_bits;
    if (r.format_version >= 3) {
      data["corrupt"] = (r.flags & abi::kInfoCorrupt) != 0;
      data["extended-l2"] = (r.flags & abi::kInfoExtendedL2) != 0;
    }
    j["format-specific"] = Json{{"type", "qcow2"}, {"data", data}};
  }
  if (has_backing) {
    j["full-backing-filename"] = FullBackingFile(filename, BackingFile(r));
    j["backing-filename"] = BackingFile(r);
  }
  j["dirty-flag"] = (r.flags & abi::kInfoDirty) != 0;
  return j.dump(4) + "\n";
}

}  // namespace instar::cli
