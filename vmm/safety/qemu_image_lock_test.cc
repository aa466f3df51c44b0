#include "vmm/safety/qemu_image_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace instar::vmm {
namespace {

class ImageLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/qemu_image_lock_test.XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = path;
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  int Open() { return ::open(path_.c_str(), O_RDWR | O_CLOEXEC); }
  std::string path_;
};

TEST_F(ImageLockTest, ReadersShareAndWritersConflictLikeQemuImg) {
  const int reader1 = Open(), reader2 = Open(), writer = Open();
  ASSERT_TRUE(AcquireImageLocks(reader1, kInfoLocks, "img").ok());
  ASSERT_TRUE(AcquireImageLocks(reader2, kCheckLocks, "img").ok());
  // A writer needs write; the readers refuse to share it.
  const Status s = AcquireImageLocks(writer, kWriteLocks, "img");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "Failed to get \"write\" lock\nIs another process using the image [img]?");
  ::close(reader1);
  ::close(reader2);
  ASSERT_TRUE(AcquireImageLocks(writer, kWriteLocks, "img").ok());
  // Now readers find the image in use, as qemu-img info would.
  const int late = Open();
  const Status r = AcquireImageLocks(late, kInfoLocks, "a b.qcow2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(),
            "Failed to get shared \"write\" lock\nIs another process using the image [a b.qcow2]?");
  ::close(late);
  ::close(writer);
}

TEST_F(ImageLockTest, LocksGoAwayWithTheDescriptor) {
  const int writer = Open();
  ASSERT_TRUE(AcquireImageLocks(writer, kWriteLocks, "img").ok());
  ::close(writer);
  const int other = Open();
  EXPECT_TRUE(AcquireImageLocks(other, kWriteLocks, "img").ok());
  ::close(other);
}

}  // namespace
}  // namespace instar::vmm
