#include "vmm/chain/path_policy.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace instar::vmm {
namespace {

TEST(PathPolicy, CombinesLikeQemu) {
  EXPECT_EQ(CombinePath("a.qcow2", "b.qcow2"), "b.qcow2");
  EXPECT_EQ(CombinePath("dir/a.qcow2", "b.qcow2"), "dir/b.qcow2");
  EXPECT_EQ(CombinePath("/x/y/a.qcow2", "../b.qcow2"), "/x/y/../b.qcow2");
  EXPECT_EQ(CombinePath("dir/a.qcow2", "/abs/b.qcow2"), "/abs/b.qcow2");
  EXPECT_EQ(DirectoryOf("a.qcow2"), ".");
  EXPECT_EQ(DirectoryOf("/a.qcow2"), "/");
  EXPECT_EQ(DirectoryOf("x/y/a.qcow2"), "x/y");
}

TEST(PathPolicy, RecognisesPseudoPaths) {
  EXPECT_TRUE(IsPseudoPath("json:{\"driver\":\"null-co\"}"));
  EXPECT_TRUE(IsPseudoPath("nbd:localhost:10809"));
  EXPECT_TRUE(IsPseudoPath("http://example.com/a.qcow2"));
  EXPECT_TRUE(IsPseudoPath("file:a.qcow2"));
  EXPECT_FALSE(IsPseudoPath("a.qcow2"));
  EXPECT_FALSE(IsPseudoPath("./odd:name.qcow2"));
  EXPECT_FALSE(IsPseudoPath("/dir/odd:name.qcow2"));
}

class AllowlistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/instar-policy.XXXXXX";
    root_ = mkdtemp(tmpl);
    ASSERT_EQ(::mkdir((root_ + "/in").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((root_ + "/inner").c_str(), 0700), 0);
    std::ofstream(root_ + "/in/a.img") << "x";
    std::ofstream(root_ + "/inner/b.img") << "x";
    ASSERT_EQ(::symlink((root_ + "/inner/b.img").c_str(), (root_ + "/in/link.img").c_str()), 0);
  }
  void TearDown() override { EXPECT_EQ(std::system(("rm -rf " + root_).c_str()), 0); }
  std::string root_;
};

TEST_F(AllowlistTest, AdmitsOnlyInsideAllowedDirectories) {
  const Allowlist list({root_ + "/in"});
  EXPECT_TRUE(list.Admit(root_ + "/in/a.img").ok());
  EXPECT_TRUE(list.Admit(root_ + "/inner/../in/a.img").ok());
  // A sibling whose name extends the allowed one is outside it.
  EXPECT_EQ(list.Admit(root_ + "/inner/b.img").status().code(), StatusCode::kPermissionDenied);
  // Symlinks are judged by where they lead.
  EXPECT_EQ(list.Admit(root_ + "/in/link.img").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(list.Admit(root_ + "/in/missing.img").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Allowlist({root_ + "/in", root_ + "/inner"}).Admit(root_ + "/in/link.img").ok());
}

TEST_F(AllowlistTest, ReadsTheConfigurationFile) {
  const std::string config = root_ + "/config";
  std::ofstream(config) << "# comment\n\nallow /srv/images  # trailing\nallow " << root_ << "\n";
  ::setenv("INSTAR_CONFIG", config.c_str(), 1);
  auto dirs = LoadConfiguredAllowDirs();
  ASSERT_TRUE(dirs.ok());
  ASSERT_EQ(dirs->size(), 2u);
  EXPECT_EQ((*dirs)[0], "/srv/images");
  std::ofstream(config) << "allow\n";
  EXPECT_FALSE(LoadConfiguredAllowDirs().ok());
  std::ofstream(config) << "deny /\n";
  EXPECT_FALSE(LoadConfiguredAllowDirs().ok());
  ::setenv("INSTAR_CONFIG", (root_ + "/none").c_str(), 1);
  ASSERT_TRUE(LoadConfiguredAllowDirs().ok());
  EXPECT_TRUE(LoadConfiguredAllowDirs()->empty());
  ::unsetenv("INSTAR_CONFIG");
}

}  // namespace
}  // namespace instar::vmm
