#include "crates/probe/probe.h"

#include <string>

#include "gtest/gtest.h"

namespace instar::probe {
namespace {

Format Probe(const std::string& s) {
  return ProbeFormat(base::ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(ProbeFormat, RecognisesMagics) {
  EXPECT_EQ(Probe(std::string("QFI\xfb\0\0\0\3", 8)), Format::kQcow2);
  EXPECT_EQ(Probe(std::string("QFI\xfb\0\0\0\2", 8)), Format::kQcow2);
  EXPECT_EQ(Probe(std::string("QFI\xfb\0\0\0\1", 8)), Format::kQcow1);
  EXPECT_EQ(Probe("KDMV\1\0\0\0"), Format::kVmdk);
  EXPECT_EQ(Probe("# Disk DescriptorFile\nversion=1\n"), Format::kVmdk);
  EXPECT_EQ(Probe("conectix"), Format::kVpc);
  EXPECT_EQ(Probe("vhdxfile"), Format::kVhdx);
  EXPECT_EQ(Probe(std::string("QED\0", 4)), Format::kQed);
  EXPECT_EQ(Probe("LUKS\xba\xbe\0\1"), Format::kLuks);
  std::string vdi(0x44, '\0');
  vdi[0x40] = '\x7f';
  vdi[0x41] = '\x10';
  vdi[0x42] = '\xda';
  vdi[0x43] = '\xbe';
  EXPECT_EQ(Probe(vdi), Format::kVdi);
}

TEST(ProbeFormat, EverythingElseIsRaw) {
  EXPECT_EQ(Probe(""), Format::kRaw);
  EXPECT_EQ(Probe("QFI"), Format::kRaw);
  EXPECT_EQ(Probe(std::string(512, '\0')), Format::kRaw);
  EXPECT_EQ(Probe("# Disk Descriptor"), Format::kRaw);
  EXPECT_STREQ(FormatName(Format::kVpc), "vpc");
}

}  // namespace
}  // namespace instar::probe
