// BuildQcow2Header and RewriteVmdkParent on headers qemu-img created (testdata) and on text.
// Byte-for-byte parity with qemu-img rebase -u is tests/differential/rebase_parity_test.sh.
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "crates/qcow2/header.h"
#include "crates/rebase/qcow2_header_update.h"
#include "crates/rebase/vmdk_parent_update.h"
#include "gtest/gtest.h"

namespace instar::rebase {
namespace {

std::vector<uint8_t> ReadCorpus(const char* name) {
  std::ifstream in(std::string("crates/rebase/testdata/header_update_corpus/") + name,
                   std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

base::ByteView View(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Built {
  bool ok = false;
  PlanError error = PlanError::kIoError;
  std::vector<uint8_t> bytes;
  qcow2::Header header;
};

Built Build(const std::vector<uint8_t>& head, const std::string& name, const std::string& fmt) {
  Built b;
  auto parsed = qcow2::ParseHeader({head.data(), head.size()});
  EXPECT_TRUE(parsed.ok());
  b.bytes.resize(parsed.value().cluster_size);
  NewBacking backing{View(name), View(fmt)};
  auto status = BuildQcow2Header({head.data(), head.size()}, parsed.value(), backing,
                                 b.bytes.data());
  b.ok = status.ok();
  if (!b.ok) return b;
  auto again = qcow2::ParseHeader({b.bytes.data(), b.bytes.size()});
  EXPECT_TRUE(again.ok());
  b.header = again.value();
  return b;
}

std::string Text(const std::vector<uint8_t>& bytes, qcow2::ByteRange r) {
  return std::string(reinterpret_cast<const char*>(bytes.data() + r.offset), r.length);
}

TEST(Qcow2HeaderUpdate, NamesTheNewBackingFileAndFormat) {
  const auto head = ReadCorpus("v3_65536");
  const Built b = Build(head, "../other/new.raw", "raw");
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(Text(b.bytes, b.header.backing_file), "../other/new.raw");
  EXPECT_EQ(Text(b.bytes, b.header.backing_format), "raw");
  EXPECT_NE(b.header.feature_names.length, 0u);
  // Unchanged: everything before the backing file fields, and the tables.
  EXPECT_EQ(std::memcmp(head.data(), b.bytes.data(), 8), 0);
  EXPECT_EQ(std::memcmp(head.data() + 20, b.bytes.data() + 20, 52), 0);
}

TEST(Qcow2HeaderUpdate, EmptyNameRemovesTheBackingFile) {
  const auto head = ReadCorpus("v3_65536");
  const Built b = Build(head, "", "raw");
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.header.backing_file.length, 0u);
  EXPECT_EQ(b.header.backing_format.length, 0u);
}

TEST(Qcow2HeaderUpdate, SmallClustersHaveNoFeatureTable) {
  const Built b = Build(ReadCorpus("v3_4096"), "b", "qcow2");
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.header.feature_names.length, 0u);
}

TEST(Qcow2HeaderUpdate, NameBeyondTheClusterIsNoSpace) {
  // 512-byte clusters: 112 header bytes, 16 of backing format extension, 8 of end marker.
  const auto head = ReadCorpus("v3_512");
  EXPECT_TRUE(Build(head, std::string(512 - 136, 'a'), "raw").ok);
  const Built b = Build(head, std::string(512 - 135, 'a'), "raw");
  EXPECT_FALSE(b.ok);
}

TEST(Qcow2HeaderUpdate, NameAboveQemusLimitIsRefused) {
  const auto head = ReadCorpus("v3_65536");
  EXPECT_TRUE(Build(head, std::string(1023, 'a'), "raw").ok);
  EXPECT_FALSE(Build(head, std::string(1024, 'a'), "raw").ok);
}

TEST(Qcow2HeaderUpdate, Version2KeepsItsShortHeader) {
  const auto head = ReadCorpus("v2_65536");
  const Built b = Build(head, "new", "qcow2");
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.header.version, 2u);
  EXPECT_EQ(b.header.feature_names.length, 0u);
  EXPECT_EQ(b.header.backing_file.offset, 72u + 16u + 8u);
}

std::string Rewrite(const std::string& text, const std::string& name, uint32_t cid,
                    size_t capacity = 1024) {
  std::vector<uint8_t> out(capacity);
  NewBacking backing{View(name), {}};
  if (!RewriteVmdkParent(View(text), backing, cid, out.data(), out.size())) return "(failed)";
  return std::string(reinterpret_cast<const char*>(out.data()));
}

constexpr char kWithParent[] =
    "# Disk DescriptorFile\nversion=1\nCID=7e8ddfe1\nparentCID=79cad0b8\n"
    "createType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\n"
    "RW 2048 SPARSE \"ov.vmdk\"\n";

TEST(VmdkParentUpdate, ReplacesTheParentLines) {
  EXPECT_EQ(Rewrite(kWithParent, "new.vmdk", 0x0123abcd),
            "# Disk DescriptorFile\nversion=1\nCID=7e8ddfe1\nparentCID=123abcd\n"
            "createType=\"monolithicSparse\"\nparentFileNameHint=\"new.vmdk\"\n"
            "RW 2048 SPARSE \"ov.vmdk\"\n");
}

TEST(VmdkParentUpdate, DetachDropsTheHint) {
  EXPECT_EQ(Rewrite(kWithParent, "", kNoParentCid),
            "# Disk DescriptorFile\nversion=1\nCID=7e8ddfe1\nparentCID=ffffffff\n"
            "createType=\"monolithicSparse\"\nRW 2048 SPARSE \"ov.vmdk\"\n");
}

TEST(VmdkParentUpdate, AddsTheHintAfterCreateType) {
  const std::string standalone =
      "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"a\"\n";
  EXPECT_EQ(Rewrite(standalone, "b.vmdk", 2),
            "version=1\nCID=1\nparentCID=2\ncreateType=\"monolithicSparse\"\n"
            "parentFileNameHint=\"b.vmdk\"\nRW 8 SPARSE \"a\"\n");
}

TEST(VmdkParentUpdate, RefusesWhatDoesNotFit) {
  EXPECT_EQ(Rewrite(kWithParent, std::string(100, 'x'), 1, 180), "(failed)");
  EXPECT_EQ(Rewrite("version=1\nCID=1\n", "b", 1), "(failed)");
}

}  // namespace
}  // namespace instar::rebase
