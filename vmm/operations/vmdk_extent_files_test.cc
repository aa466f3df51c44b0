#include "vmm/operations/vmdk_extent_files.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

namespace fs = std::filesystem;

class VmdkExtentFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / "vmdk_extent_files";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    descriptor_ = (dir_ / "disk.vmdk").string();
    Write(descriptor_, "RW 8 SPARSE \"disk-s001.vmdk\"\n");
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }
  fs::path dir_;
  std::string descriptor_;
};

TEST_F(VmdkExtentFilesTest, RemovesWhatItCreatedWhileTheDescriptorIsUnchanged) {
  {
    NewExtentFiles files(descriptor_);
    auto device = files.Create("disk-s002.vmdk");
    ASSERT_TRUE(device.ok()) << device.status().message();
    EXPECT_TRUE(device->limits.writable);
    EXPECT_EQ(device->limits.size, 0u);
    EXPECT_EQ(device->limits.write_limit, kNewExtentFileLimit);
    EXPECT_TRUE(fs::exists(dir_ / "disk-s002.vmdk"));
  }
  EXPECT_FALSE(fs::exists(dir_ / "disk-s002.vmdk"));
}

TEST_F(VmdkExtentFilesTest, KeepsThemOnceKeptOrNamedByTheDescriptor) {
  {
    NewExtentFiles files(descriptor_);
    ASSERT_TRUE(files.Create("disk-s002.vmdk").ok());
    files.Keep();
  }
  EXPECT_TRUE(fs::exists(dir_ / "disk-s002.vmdk"));
  {
    NewExtentFiles files(descriptor_);
    ASSERT_TRUE(files.Create("disk-s003.vmdk").ok());
    Write(descriptor_, "RW 8 SPARSE \"disk-s001.vmdk\"\nRW 8 SPARSE \"disk-s003.vmdk\"\n");
  }
  EXPECT_TRUE(fs::exists(dir_ / "disk-s003.vmdk"));
}

TEST_F(VmdkExtentFilesTest, NeverTakesOverAnExistingFileOrLeavesTheDirectory) {
  Write((dir_ / "disk-s002.vmdk").string(), "mine");
  ASSERT_EQ(::symlink("/nonexistent-target", (dir_ / "disk-s003.vmdk").c_str()), 0);
  {
    NewExtentFiles files(descriptor_);
    auto taken = files.Create("disk-s002.vmdk");
    ASSERT_FALSE(taken.ok());
    EXPECT_NE(taken.status().message().find("File exists"), std::string::npos);
    EXPECT_FALSE(files.Create("disk-s003.vmdk").ok());
    EXPECT_FALSE(files.Create("../x.vmdk").ok());
    EXPECT_FALSE(files.Create("").ok());
  }
  std::ifstream in(dir_ / "disk-s002.vmdk");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "mine");
  EXPECT_TRUE(fs::is_symlink(dir_ / "disk-s003.vmdk"));
}

TEST(SplitDescriptorName, AsQemuImgCreateSplitsIt) {
  EXPECT_EQ(SplitDescriptorName("/a.b/disk.vmdk").stem, "disk");
  EXPECT_EQ(SplitDescriptorName("/a.b/disk.vmdk").suffix, ".vmdk");
  EXPECT_EQ(SplitDescriptorName("/a.b/disk").stem, "disk");
  EXPECT_EQ(SplitDescriptorName("/a.b/disk").suffix, "");
  EXPECT_EQ(SplitDescriptorName("x.tar.vmdk").stem, "x.tar");
}

}  // namespace
}  // namespace instar::vmm
