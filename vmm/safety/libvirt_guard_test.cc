#include "vmm/safety/libvirt_guard.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

namespace fs = std::filesystem;

TEST(DiskSourcesOf, FindsFileAndDeviceSources) {
  const std::string xml = R"(<domain><devices>
    <disk type='file' device='disk'><source file='/var/lib/a&apos;b.qcow2'/><target dev='vda'/></disk>
    <disk type="block"><source dev="/dev/sdb"/></disk>
    <interface><source network='default'/></interface>
  </devices></domain>)";
  EXPECT_EQ(DiskSourcesOf(xml), (std::vector<std::string>{"/var/lib/a'b.qcow2", "/dev/sdb"}));
}

// libvirt's in-process test driver with a node description this test writes: one running
// domain using `in_use`.
class LibvirtGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("libvirt-guard-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    in_use_ = (dir_ / "in-use.qcow2").string();
    free_ = (dir_ / "free.qcow2").string();
    std::ofstream(in_use_) << "x";
    std::ofstream(free_) << "x";
    const std::string node = (dir_ / "node.xml").string();
    std::ofstream(node) << "<node><domain type='test'><name>web1</name><memory>65536</memory>"
                           "<os><type>hvm</type></os><devices><disk type='file' device='disk'>"
                           "<source file='" << in_use_ << "'/><target dev='vda'/></disk>"
                           "</devices></domain></node>";
    uri_ = "test://" + node;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string in_use_, free_, uri_;
};

TEST_F(LibvirtGuardTest, RefusesImagesARunningDomainUses) {
  const Status s = CheckNotInUseByLibvirt({free_, in_use_}, uri_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "Image '" + in_use_ + "' is in use by running libvirt domain 'web1'");
  // The same file through another name is the same file.
  const std::string link = (dir_ / "alias.qcow2").string();
  fs::create_symlink(in_use_, link);
  EXPECT_FALSE(CheckNotInUseByLibvirt({link}, uri_).ok());
}

TEST_F(LibvirtGuardTest, AllowsOtherImagesAndNoLibvirt) {
  EXPECT_TRUE(CheckNotInUseByLibvirt({free_}, uri_).ok());
  EXPECT_TRUE(CheckNotInUseByLibvirt({in_use_}, "").ok());
  const Status unreachable = CheckNotInUseByLibvirt({free_}, "test:///nonexistent/node.xml");
  EXPECT_EQ(unreachable.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace instar::vmm
