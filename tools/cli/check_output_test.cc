#include "tools/cli/check_output.h"
#include "tools/cli/qdict_json.h"

#include <gtest/gtest.h>

namespace instar::cli {
namespace {

abi::CheckResult Clean() {
  abi::CheckResult r{};
  r.magic = abi::kCheckResultMagic;
  r.format = static_cast<uint32_t>(abi::ImageFormat::kQcow2);
  r.image_end_offset = 1441792;
  r.total_clusters = 1024;
  r.allocated_clusters = 17;
  return r;
}

TEST(CheckOutput, HumanClean) {
  EXPECT_EQ(CheckHuman(Clean()),
            "No errors were found on the image.\n"
            "17/1024 = 1.66% allocated, 0.00% fragmented, 0.00% compressed clusters\n"
            "Image end offset: 1441792\n");
}

TEST(CheckOutput, HumanLeaksAndCorruptions) {
  abi::CheckResult r = Clean();
  r.corruptions = 1;
  r.leaks = 2;
  EXPECT_EQ(CheckHuman(r),
            "\n1 errors were found on the image.\n"
            "Data may be corrupted, or further writes to the image may corrupt it.\n"
            "\n2 leaked clusters were found on the image.\n"
            "This means waste of disk space, but no harm to data.\n"
            "17/1024 = 1.66% allocated, 0.00% fragmented, 0.00% compressed clusters\n"
            "Image end offset: 1441792\n");
}

TEST(CheckOutput, JsonKeyOrderIsQemus) {
  abi::CheckResult r = Clean();
  r.corruptions = 1;
  r.leaks = 2;
  r.compressed_clusters = 1;
  r.fragmented_clusters = 1;
  EXPECT_EQ(CheckJson("x.qcow2", r),
            "{\n"
            "    \"image-end-offset\": 1441792,\n"
            "    \"compressed-clusters\": 1,\n"
            "    \"total-clusters\": 1024,\n"
            "    \"corruptions\": 1,\n"
            "    \"check-errors\": 0,\n"
            "    \"leaks\": 2,\n"
            "    \"allocated-clusters\": 17,\n"
            "    \"filename\": \"x.qcow2\",\n"
            "    \"format\": \"qcow2\",\n"
            "    \"fragmented-clusters\": 1\n"
            "}\n");
}

TEST(CheckOutput, RepairBannerOnlyWhenSomethingWasFixed) {
  abi::CheckResult r = Clean();
  EXPECT_EQ(CheckRepairBanner(r), "");
  r.leaks_fixed = 2;
  EXPECT_EQ(CheckRepairBanner(r),
            "The following inconsistencies were found and repaired:\n\n"
            "    2 leaked clusters\n"
            "    0 corruptions\n\n"
            "Double checking the fixed image now...\n");
}

TEST(CheckOutput, JsonStringsEscapeLikeQemu) {
  EXPECT_EQ(QemuJsonString("q\"\xc3\xa9\\x"), "\"q\\\"\\u00E9\\\\x\"");
  EXPECT_EQ(QemuJsonString("a\x01\x7f\xff"), "\"a\\u0001\\u007F\\uFFFD\"");
  EXPECT_EQ(QemuJsonString("z\xf0\x9f\x98\x80"), "\"z\\uD83D\\uDE00\"");
}

}  // namespace
}  // namespace instar::cli
