#include "crates/qcow2/header.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace instar::qcow2 {
namespace {

// A 64 KiB-cluster v3 image's first cluster, as qemu-img creates it (1 MiB, 16-bit refcounts).
class HeaderBuilder {
 public:
  HeaderBuilder() : bytes_(65536, 0) {
    Be32(0, kMagic);
    Be32(4, 3);
    Be32(20, 16);
    Be64(24, 1 << 20);
    Be32(36, 1);
    Be64(40, 0x30000);
    Be64(48, 0x10000);
    Be32(56, 1);
    Be32(96, 4);
    Be32(100, 104);
  }
  HeaderBuilder& Be32(size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes_[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
    return *this;
  }
  HeaderBuilder& Be64(size_t at, uint64_t v) {
    Be32(at, static_cast<uint32_t>(v >> 32));
    return Be32(at + 4, static_cast<uint32_t>(v));
  }
  HeaderBuilder& Bytes(size_t at, const char* text) {
    std::memcpy(bytes_.data() + at, text, std::strlen(text));
    return *this;
  }
  // Appends a header extension at `at`.
  HeaderBuilder& Extension(size_t at, uint32_t type, const char* data) {
    Be32(at, type);
    Be32(at + 4, static_cast<uint32_t>(std::strlen(data)));
    return Bytes(at + 8, data);
  }
  base::ByteView view() const { return {bytes_.data(), bytes_.size()}; }

 private:
  std::vector<uint8_t> bytes_;
};

HeaderError ErrorOf(const HeaderBuilder& b) {
  auto r = ParseHeader(b.view());
  EXPECT_FALSE(r.ok());
  return r.error().code;
}

TEST(Qcow2Header, ParsesPlainV3) {
  auto r = ParseHeader(HeaderBuilder().view());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().version, 3u);
  EXPECT_EQ(r.value().cluster_size, 65536u);
  EXPECT_EQ(r.value().size, 1u << 20);
  EXPECT_EQ(r.value().refcount_bits(), 16u);
  EXPECT_EQ(r.value().backing_file.length, 0u);
}

TEST(Qcow2Header, ReadsBackingFileAndExtensions) {
  HeaderBuilder b;
  b.Be64(8, 0x200).Be32(16, 8).Bytes(0x200, "base.img");
  b.Extension(104, kExtBackingFormat, "qcow2");
  b.Extension(120, kExtExternalDataFile, "data.raw");
  auto r = ParseHeader(b.view());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().backing_file.offset, 0x200u);
  EXPECT_EQ(r.value().backing_file.length, 8u);
  EXPECT_EQ(r.value().backing_format.length, 5u);
  EXPECT_EQ(r.value().external_data_file.offset, 128u);
}

TEST(Qcow2Header, RefusesInQemusOrder) {
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(0, 0)), HeaderError::kNotQcow2);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(4, 4)), HeaderError::kUnsupportedVersion);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(20, 8)), HeaderError::kInvalidClusterSize);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(20, 22)), HeaderError::kInvalidClusterSize);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(100, 100)), HeaderError::kHeaderTooShort);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(100, 70000)), HeaderError::kHeaderTooLong);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(8, 70000)), HeaderError::kInvalidBackingFileOffset);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(72, 0x20)), HeaderError::kUnsupportedFeatures);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(96, 7)), HeaderError::kRefcountOrderTooLarge);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(72, 8)), HeaderError::kCompressionBitSet);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(32, 3)), HeaderError::kBadEncryptionMethod);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(56, 129)), HeaderError::kRefcountTableTooLarge);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(56, 0)), HeaderError::kNoRefcountTable);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(48, 7)), HeaderError::kRefcountTableOffsetInvalid);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(60, 65537)), HeaderError::kSnapshotTableTooLarge);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(60, 1).Be64(64, 3)),
            HeaderError::kSnapshotTableOffsetInvalid);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(36, 0x400001)), HeaderError::kL1TableTooLarge);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(24, 0x7fffffffffffff00)), HeaderError::kImageTooBig);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(36, 0)), HeaderError::kL1TableTooSmall);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(40, 3)), HeaderError::kL1TableOffsetInvalid);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(40, 0x7fffffffffff0000)),
            HeaderError::kL1TableUnreadable);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(8, 1000).Be32(16, 2000)),
            HeaderError::kBackingFileTooLong);
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(24, UINT64_MAX)), HeaderError::kImageTooLarge);
}

TEST(Qcow2Header, UnknownFeaturesCarryTheirBits) {
  auto r = ParseHeader(HeaderBuilder().Be64(72, 0x61).view());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().detail, 0x60u);
}

TEST(Qcow2Header, ExtensionRunningPastTheClusterIsRefused) {
  HeaderBuilder b;
  b.Be32(104, kExtFeatureNames).Be32(108, 70000);
  EXPECT_EQ(ErrorOf(b), HeaderError::kBadExtension);
  // A backing file name that starts inside the extension area cuts it short.
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be64(8, 109).Be32(16, 1)), HeaderError::kBadExtension);
}

TEST(Qcow2Header, BackingNameBeyondAPartialFirstRead) {
  HeaderBuilder b;
  b.Be64(8, 0x1000).Be32(16, 8).Bytes(0x1000, "base.img");
  // The first 4 KiB only: the name lies past them, to be read with the whole cluster.
  EXPECT_TRUE(ParseHeader(b.view().Sub(0, 4096)).ok());
  auto whole = ParseHeader(b.view());
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole.value().backing_file.offset, 0x1000u);
}

TEST(Qcow2Header, LuksNeedsItsExtension) {
  EXPECT_EQ(ErrorOf(HeaderBuilder().Be32(32, kCryptLuks)), HeaderError::kCryptoHeaderMissing);
  HeaderBuilder small;
  small.Be32(32, kCryptLuks).Be32(104, kExtFullDiskEncryption).Be32(108, 8);
  EXPECT_EQ(ErrorOf(small), HeaderError::kCryptoExtensionSize);
  HeaderBuilder unaligned;
  unaligned.Be32(32, kCryptLuks).Be32(104, kExtFullDiskEncryption).Be32(108, 16);
  unaligned.Be64(112, 0x40001).Be64(120, 0x1000);
  EXPECT_EQ(ErrorOf(unaligned), HeaderError::kCryptoHeaderUnaligned);
  HeaderBuilder unexpected;  // qemu refuses the extension before looking at its length
  unexpected.Be32(104, kExtFullDiskEncryption).Be32(108, 8);
  EXPECT_EQ(ErrorOf(unexpected), HeaderError::kCryptoExtensionUnexpected);
  HeaderBuilder b;
  b.Be32(32, kCryptLuks).Be32(104, kExtFullDiskEncryption).Be32(108, 16);
  b.Be64(112, 0x40000).Be64(120, 0x1000);
  auto r = ParseHeader(b.view());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().crypto_header.offset, 0x40000u);
  EXPECT_EQ(r.value().crypto_header.length, 0x1000u);
}

TEST(Qcow2Header, FindsTheFeatureNameTableOfARefusedImage) {
  HeaderBuilder b;
  b.Be64(72, 0x20).Be32(104, kExtFeatureNames).Be32(108, 48);
  b.Bytes(112, "\x00\x05" "frobnicate");
  const ByteRange table = FindFeatureNameTable(b.view());
  EXPECT_EQ(table.offset, 112u);
  EXPECT_EQ(table.length, 48u);
}

TEST(Qcow2Header, ShortViewIsRefusedNotOverread) {
  HeaderBuilder b;
  auto r = ParseHeader(b.view().Sub(0, 50));
  ASSERT_FALSE(r.ok());
}

}  // namespace
}  // namespace instar::qcow2
