#include "crates/probe/probe.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace instar::probe {
namespace {

Format Probe(const std::vector<uint8_t>& b) { return ProbeFormat({b.data(), b.size()}); }

std::vector<uint8_t> With(const void* magic, size_t n, size_t at = 0) {
  std::vector<uint8_t> b(1024, 0);
  std::memcpy(b.data() + at, magic, n);
  return b;
}

TEST(Probe, RecognisesFormats) {
  const uint8_t qcow2[] = {'Q', 'F', 'I', 0xFB, 0, 0, 0, 3};
  const uint8_t qcow1[] = {'Q', 'F', 'I', 0xFB, 0, 0, 0, 1};
  EXPECT_EQ(Probe(With(qcow2, sizeof qcow2)), Format::kQcow2);
  EXPECT_EQ(Probe(With(qcow1, sizeof qcow1)), Format::kQcow1);
  const uint8_t qcow0[] = {'Q', 'F', 'I', 0xFB, 0, 0, 0, 0};
  EXPECT_EQ(Probe(With(qcow0, sizeof qcow0)), Format::kRaw);
  EXPECT_EQ(Probe(With("KDMV", 4)), Format::kVmdk);
  EXPECT_EQ(Probe(With("# Disk DescriptorFile\nversion=1\n", 32)), Format::kVmdk);
  EXPECT_EQ(Probe(With("conectix", 8)), Format::kVpc);
  EXPECT_EQ(Probe(With("vhdxfile", 8)), Format::kVhdx);
  EXPECT_EQ(Probe(With("LUKS\xba\xbe", 6)), Format::kLuks);
}

TEST(Probe, AnythingElseIsRaw) {
  EXPECT_EQ(Probe(std::vector<uint8_t>(512, 0)), Format::kRaw);
  EXPECT_EQ(Probe({}), Format::kRaw);
  EXPECT_EQ(Probe(With("QFI", 3)), Format::kRaw);
}

TEST(Probe, NamesFormatsLikeQemu) {
  EXPECT_STREQ(FormatName(Format::kQcow2), "qcow2");
  EXPECT_STREQ(FormatName(Format::kVpc), "vpc");
}

}  // namespace
}  // namespace instar::probe
