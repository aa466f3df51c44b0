#include "tools/cli/check_output.h"

#include "tools/cli/qdict_json.h"
#include "vmm/base/text_format.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <utility>
#include <vector>

namespace instar::cli {
namespace {

const char* FormatName(uint32_t format) {
  return static_cast<abi::ImageFormat>(format) == abi::ImageFormat::kVmdk ? "vmdk" : "qcow2";
}

// Decodes one UTF-8 sequence at text[i]; -1 when it is not valid.

}  // namespace


std::string CheckRepairBanner(const abi::CheckResult& r) {
  if (r.corruptions_fixed == 0 && r.leaks_fixed == 0) return "";
  return Format("The following inconsistencies were found and repaired:\n\n"
                "    %" PRId64 " leaked clusters\n"
                "    %" PRId64 " corruptions\n\n"
                "Double checking the fixed image now...\n",
                static_cast<int64_t>(r.leaks_fixed), static_cast<int64_t>(r.corruptions_fixed));
}

std::string CheckHuman(const abi::CheckResult& r) {
  std::string out;
  if (r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0) {
    out += "No errors were found on the image.\n";
  } else {
    if (r.corruptions != 0) {
      out += Format("\n%" PRId64 " errors were found on the image.\n"
                    "Data may be corrupted, or further writes to the image may corrupt it.\n",
                    static_cast<int64_t>(r.corruptions));
    }
    if (r.leaks != 0) {
      out += Format("\n%" PRId64 " leaked clusters were found on the image.\n"
                    "This means waste of disk space, but no harm to data.\n",
                    static_cast<int64_t>(r.leaks));
    }
    if (r.check_errors != 0) {
      out += Format("\n%" PRId64 " internal errors have occurred during the check.\n",
                    static_cast<int64_t>(r.check_errors));
    }
  }
  if (r.total_clusters != 0 && r.allocated_clusters != 0) {
    const double allocated = static_cast<double>(r.allocated_clusters);
    out += Format("%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% "
                  "compressed clusters\n",
                  static_cast<int64_t>(r.allocated_clusters), static_cast<int64_t>(r.total_clusters),
                  allocated * 100.0 / static_cast<double>(r.total_clusters),
                  static_cast<double>(r.fragmented_clusters) * 100.0 / allocated,
                  static_cast<double>(r.compressed_clusters) * 100.0 / allocated);
  }
  if (r.image_end_offset != 0) {
    out += Format("Image end offset: %" PRId64 "\n", static_cast<int64_t>(r.image_end_offset));
  }
  return out;
}

std::string CheckJson(const std::string& filename, const abi::CheckResult& r) {
  // qemu prints its dictionary in hash-bucket order; for these keys that order is fixed.
  // Optional keys appear only when non-zero.
  std::vector<std::pair<std::string, std::string>> fields;
  const auto number = [&](const char* key, uint64_t value, bool always) {
    if (always || value != 0) {
      fields.emplace_back(key, std::to_string(static_cast<int64_t>(value)));
    }
  };
  number("image-end-offset", r.image_end_offset, false);
  number("compressed-clusters", r.compressed_clusters, false);
  number("total-clusters", r.total_clusters, false);
  number("corruptions", r.corruptions, false);
  number("corruptions-fixed", r.corruptions_fixed, false);
  number("check-errors", r.check_errors, true);
  number("leaks", r.leaks, false);
  number("leaks-fixed", r.leaks_fixed, false);
  number("allocated-clusters", r.allocated_clusters, false);
  fields.emplace_back("filename", QemuJsonString(filename));
  fields.emplace_back("format", QemuJsonString(FormatName(r.format)));
  number("fragmented-clusters", r.fragmented_clusters, false);
  std::string out = "{\n";
  for (size_t i = 0; i < fields.size(); ++i) {
    out += "    \"" + fields[i].first + "\": " + fields[i].second;
    out += i + 1 < fields.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

}  // namespace instar::cli
