// The vmdk sparse header and descriptor parsers.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "crates/vmdk/descriptor.h"
#include "crates/vmdk/extent_name.h"
#include "crates/vmdk/sparse_header.h"

namespace instar::vmdk {
namespace {

void Le32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Le64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  Le32(b, at, static_cast<uint32_t>(v));
  Le32(b, at + 4, static_cast<uint32_t>(v >> 32));
}

// qemu-img's monolithicSparse header for a 1 MiB image.
std::vector<uint8_t> Sparse() {
  std::vector<uint8_t> b(512, 0);
  Le32(b, 0, kSparseMagic);
  Le32(b, 4, 1);
  Le32(b, 8, 3);
  Le64(b, 12, 2048);
  Le64(b, 20, 128);
  Le64(b, 28, 1);
  Le64(b, 36, 20);
  Le32(b, 44, 512);
  Le64(b, 64, 128);
  return b;
}

SparseHeaderError ErrorOf(const std::vector<uint8_t>& b) {
  auto r = ParseSparseHeader({b.data(), b.size()}, 1 << 20);
  EXPECT_FALSE(r.ok());
  return r.error().code;
}

TEST(SparseHeader, ParsesQemuImgHeader) {
  const auto b = Sparse();
  auto r = ParseSparseHeader({b.data(), b.size()}, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().capacity_sectors, 2048u);
  EXPECT_EQ(r.value().grain_sectors, 128u);
  EXPECT_EQ(r.value().descriptor_offset_sectors, 1u);
  EXPECT_EQ(r.value().overhead_sectors, 128u);
}

TEST(SparseHeader, AcceptsWhatQemuAccepts) {
  auto b = Sparse();
  Le64(b, 20, 3);  // a grain of three sectors
  EXPECT_TRUE(ParseSparseHeader({b.data(), b.size()}, 1 << 20).ok());
  b = Sparse();
  Le32(b, 4, 0);
  EXPECT_TRUE(ParseSparseHeader({b.data(), b.size()}, 1 << 20).ok());
  b = Sparse();
  Le32(b, 44, 1);
  Le64(b, 12, 0x10000000000);  // the grain directory size wraps in 32 bits, as in qemu
  EXPECT_TRUE(ParseSparseHeader({b.data(), b.size()}, 1 << 20).ok());
}

// A file whose header defers to a footer (gd_offset kGdAtEnd), followed by `footer`.
struct FooterFile {
  std::vector<uint8_t> bytes;
  base::Result<SparseHeader, SparseHeaderError> Read() const {
    return ReadSparseHeader({bytes.data(), 512}, bytes.size(),
                            [&](uint64_t offset, uint64_t length, uint8_t* out) {
                              if (offset + length > bytes.size()) return false;
                              std::memcpy(out, bytes.data() + offset, length);
                              return true;
                            });
  }
};

FooterFile WithFooter(uint64_t footer_capacity) {
  FooterFile f;
  f.bytes = Sparse();
  Le64(f.bytes, 56, kGdAtEnd);
  f.bytes.resize(128 * 512, 0);
  std::vector<uint8_t> footer(kFooterBytes, 0);
  Le32(footer, 12, 3);  // the footer marker
  auto copy = Sparse();
  Le64(copy, 12, footer_capacity);
  Le64(copy, 56, 100);
  std::memcpy(footer.data() + 512, copy.data(), 512);
  f.bytes.insert(f.bytes.end(), footer.begin(), footer.end());
  return f;
}

TEST(SparseHeader, FollowsTheFooter) {
  const FooterFile f = WithFooter(4096);
  ASSERT_TRUE(DefersToFooter({f.bytes.data(), 512}));
  auto r = f.Read();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().capacity_sectors, 4096u);
  EXPECT_EQ(r.value().gd_offset_sectors, 100u);
  // A header with an embedded descriptor file does not defer (qemu opens the descriptor).
  auto described = Sparse();
  Le64(described, 56, kGdAtEnd);
  Le64(described, 12, 0);
  EXPECT_FALSE(DefersToFooter({described.data(), described.size()}));
}

TEST(SparseHeader, RefusesBadFooters) {
  FooterFile f = WithFooter(4096);
  f.bytes[f.bytes.size() - kFooterBytes + 12] = 2;  // a grain-directory marker instead
  EXPECT_EQ(f.Read().error().code, SparseHeaderError::kInvalidFooter);
  f = WithFooter(4096);
  f.bytes[f.bytes.size() - 512 + 12] = 1;  // the end-of-stream marker is a grain table's
  EXPECT_EQ(f.Read().error().code, SparseHeaderError::kInvalidFooter);
  f = WithFooter(4096);
  Le32(f.bytes, f.bytes.size() - 1024 + 4, 7);  // the footer's header has a bad version
  EXPECT_EQ(f.Read().error().code, SparseHeaderError::kUnsupportedVersion);
  f = WithFooter(4096);
  Le64(f.bytes, f.bytes.size() - 1024 + 56, kGdAtEnd);  // no second footer: unreadable
  EXPECT_EQ(f.Read().error().code, SparseHeaderError::kL1Unreadable);
  f = WithFooter(4096);
  f.bytes.resize(1024);
  EXPECT_EQ(f.Read().error().code, SparseHeaderError::kFooterUnreadable);
}

TEST(SparseHeader, RefusesInQemusOrder) {
  auto b = Sparse();
  b[0] = 0;
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kNotSparse);
  b = Sparse();
  Le32(b, 4, 9);
  Le32(b, 44, 0);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kUnsupportedVersion);
  b = Sparse();
  Le64(b, 20, 0x200001);
  Le32(b, 44, 513);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kBadGrainTableSize);
  b = Sparse();
  Le64(b, 20, 0x200001);
  Le32(b, 44, 0);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kBadL1EntrySize);
  b = Sparse();
  Le64(b, 20, 0x200001);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kBadGrainSize);
  b = Sparse();
  Le32(b, 44, 1);
  Le64(b, 12, 128 * (1ull << 25) + 1);
  EXPECT_EQ(ErrorOf(b), SparseHeaderError::kL1TooBig);
  EXPECT_EQ(ErrorOf(std::vector<uint8_t>(b.begin(), b.begin() + 40)),
            SparseHeaderError::kTruncated);
}

TEST(SparseHeader, ChecksTheFileAndTableReads) {
  const auto b = Sparse();
  auto r = ParseSparseHeader({b.data(), b.size()}, 30000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SparseHeaderError::kFileTruncated);
  EXPECT_EQ(r.error().detail, 65536u);
  auto gd = Sparse();
  Le64(gd, 56, 1ull << 54);
  EXPECT_EQ(ParseSparseHeader({gd.data(), gd.size()}, 1 << 20).error().code,
            SparseHeaderError::kL1Unreadable);
  auto rgd = Sparse();
  Le64(rgd, 48, 1ull << 54);
  EXPECT_EQ(ParseSparseHeader({rgd.data(), rgd.size()}, 1 << 20).error().code,
            SparseHeaderError::kL1BackupUnreadable);
  Le32(rgd, 8, 1);  // without the redundant-table flag the backup is not read
  EXPECT_TRUE(ParseSparseHeader({rgd.data(), rgd.size()}, 1 << 20).ok());
}

base::Status<DescriptorError> Parse(const std::string& text, Descriptor* d) {
  return ParseDescriptor({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, d);
}

std::string Field(const std::string& text, TextRange r) { return text.substr(r.offset, r.length); }

TEST(Descriptor, ParsesSplitSparse) {
  const std::string text =
      "# Disk DescriptorFile\nversion=1\nCID=a97d5bd8\nparentCID=ffffffff\n"
      "createType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n"
      "RW 4194304 SPARSE \"d-s001.vmdk\"\nRW 2097152 SPARSE \"d-s002.vmdk\"\n\n"
      "ddb.virtualHWVersion = \"4\"\n";
  Descriptor d;
  ASSERT_TRUE(Parse(text, &d).ok());
  EXPECT_EQ(d.keys.cid, 0xa97d5bd8u);
  EXPECT_EQ(d.keys.parent_cid, 0xffffffffu);
  EXPECT_TRUE(d.keys.cids_readable);
  EXPECT_EQ(Field(text, d.keys.create_type), "twoGbMaxExtentSparse");
  ASSERT_EQ(d.extent_count, 2u);
  EXPECT_EQ(d.extents[1].type, ExtentType::kSparse);
  EXPECT_EQ(Field(text, d.extents[1].filename), "d-s002.vmdk");
  EXPECT_EQ(d.extents[0].sectors, 4194304u);
}

TEST(Descriptor, FlatOffsetsAndParentHint) {
  const std::string text =
      "# Disk DescriptorFile\nCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\n"
      "parentFileNameHint=\"base.vmdk\"\nRW 100 FLAT \"x-flat.vmdk\" 7\n";
  Descriptor d;
  ASSERT_TRUE(Parse(text, &d).ok());
  EXPECT_EQ(Field(text, d.keys.parent_file_name_hint), "base.vmdk");
  EXPECT_EQ(d.extents[0].offset_sectors, 7u);
  EXPECT_EQ(d.extents[0].type, ExtentType::kFlat);
}

TEST(Descriptor, ScansExtentLinesLikeQemu) {
  Descriptor d;
  // Not RW, no sectors, unknown type, no quotes: skipped, as qemu skips them.
  ASSERT_TRUE(Parse("# Disk DescriptorFile\nRDONLY 5 FLAT \"a\" 0\nRW x FLAT \"a\" 0\n"
                    "RW 5 ZERO \"a\"\nRW 5 FLAT a 0\nRW 0 SPARSE \"a\"\n",
                    &d).ok());
  EXPECT_EQ(d.extent_count, 0u);
  // A FLAT line without its offset, or a SPARSE line with one, is invalid; the error names
  // the line.
  const std::string bad = "# Disk DescriptorFile\nRW 5 FLAT \"a\"\nRW 5 SPARSE \"b\"\n";
  ASSERT_EQ(Parse(bad, &d).error().code, DescriptorError::kBadExtentLine);
  EXPECT_EQ(Field(bad, d.bad_line), "RW 5 FLAT \"a\"");
  EXPECT_EQ(Parse("# Disk DescriptorFile\nRW 5 SPARSE \"b\" 3\n", &d).error().code,
            DescriptorError::kBadExtentLine);
  // The scan crosses line ends, as sscanf does.
  const std::string split = "# Disk DescriptorFile\nRW\n5 VMFS \"v\"\n";
  ASSERT_TRUE(Parse(split, &d).ok());
  ASSERT_EQ(d.extent_count, 1u);
  EXPECT_EQ(d.extents[0].type, ExtentType::kVmfs);
  EXPECT_EQ(Field(split, d.extents[0].filename), "v");
}

TEST(Descriptor, ProbesLikeQemu) {
  auto probe = [](const std::string& t) {
    return LooksLikeDescriptor({reinterpret_cast<const uint8_t*>(t.data()), t.size()});
  };
  EXPECT_TRUE(probe("# Disk DescriptorFile\nversion=1\n"));
  EXPECT_TRUE(probe("  \nversion=3\r\n"));
  EXPECT_TRUE(probe("version=2\n"));
  EXPECT_FALSE(probe("\nversion=1\n"));
  EXPECT_FALSE(probe("  version=1\n"));
  EXPECT_FALSE(probe("version=1"));
  EXPECT_FALSE(probe("version=4\n"));
  EXPECT_FALSE(probe("  # c\nversion=1\n"));
}

TEST(Descriptor, RefusesMalformedText) {
  Descriptor d;
  std::string many = "# Disk DescriptorFile\n";
  for (uint32_t i = 0; i <= kMaxExtents; ++i) many += "RW 1 FLAT \"f\" 0\n";
  EXPECT_EQ(Parse(many, &d).error().code, DescriptorError::kTooManyExtents);
}

DescriptorKeys Keys(const std::string& text) {
  return ReadDescriptorKeys({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

TEST(DescriptorKeys, ReadLikeQemu) {
  // The first "CID" anywhere wins, even inside "parentCID".
  DescriptorKeys k = Keys("XID=1\nparentCID=  12ab\n");
  EXPECT_TRUE(k.cids_readable);
  EXPECT_EQ(k.cid, 0x12abu);
  EXPECT_EQ(k.parent_cid, 0x12abu);
  EXPECT_FALSE(Keys("CID=1\nparentCID=zz\n").cids_readable);
  EXPECT_FALSE(Keys("CID=1\n").cids_readable);
  EXPECT_TRUE(Keys("CID=1\nparentCID=ffffffff\nparentFileNameHint=\"b").hint_unterminated);
  const std::string text = "CID=1\nparentCID=2\ncreateType=\"vmfs\"\n";
  k = Keys(text);
  EXPECT_EQ(text.substr(k.create_type.offset, k.create_type.length), "vmfs");
  // A C string: nothing after the first NUL counts.
  EXPECT_FALSE(Keys(std::string("CID=1\0parentCID=2", 17)).cids_readable);
}

}  // namespace
TEST(ExtentName, AsQemuImgCreateNamesThem) {
  uint8_t out[32];
  uint64_t n = WriteExtentFileName("disk", 4, ".vmdk", out, sizeof out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), n), "disk-s004.vmdk");
  n = WriteExtentFileName("d", 1234, "", out, sizeof out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), n), "d-s1234");
  EXPECT_EQ(WriteExtentFileName("disk", 4, ".vmdk", out, 13), 0u);
}

}  // namespace instar::vmdk
