// The host's side of the commit protocol against a hostile guest: results are validated
// before anything is printed, every error code has one line of text, and the write limits
// saturate instead of wrapping.
#include "vmm/operations/commit_request.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace instar::vmm {
namespace {

abi::CommitResult GoodResult() {
  abi::CommitResult r{};
  r.magic = abi::kCommitResultMagic;
  r.flags = abi::kCommitTopEmptied | abi::kCommitBaseGrown;
  r.failed_layer = 1;
  r.base_old_size = 1 << 20;
  r.base_new_size = 3 << 20;
  return r;
}

TEST(CommitRequest, AcceptsAPlausibleResult) {
  EXPECT_TRUE(ValidateCommitResult(GoodResult(), 2).ok());
  abi::CommitResult unknown_layer = GoodResult();
  unknown_layer.failed_layer = abi::kCommitLayerUnknown;
  EXPECT_TRUE(ValidateCommitResult(unknown_layer, 2).ok());
}

TEST(CommitRequest, RefusesHostileResults) {
  abi::CommitResult r = GoodResult();
  r.magic = 0;
  EXPECT_FALSE(ValidateCommitResult(r, 2).ok());
  r = GoodResult();
  r.flags = 1u << 7;
  EXPECT_FALSE(ValidateCommitResult(r, 2).ok());
  r = GoodResult();
  r.failed_layer = 2;
  EXPECT_FALSE(ValidateCommitResult(r, 2).ok());
  r = GoodResult();
  r.base_new_size = r.base_old_size - 512;
  EXPECT_FALSE(ValidateCommitResult(r, 2).ok());
}

TEST(CommitRequest, EveryErrorHasOneLine) {
  for (uint32_t code = 1; code < abi::kCommitErrorCount; ++code) {
    for (uint64_t detail : {uint64_t{0}, uint64_t{3}, uint64_t{abi::kCommitUnsupportedCount},
                            UINT64_MAX}) {
      for (bool written : {false, true}) {
        const std::string line =
            DescribeCommitError(static_cast<abi::CommitError>(code), detail, "'b.qcow2'", written);
        EXPECT_FALSE(line.empty()) << code;
        EXPECT_EQ(line.find('\n'), std::string::npos) << line;
        EXPECT_EQ(line.find("unknown commit error"), std::string::npos) << line;
      }
    }
  }
  EXPECT_NE(DescribeCommitError(static_cast<abi::CommitError>(abi::kCommitErrorCount), 0, "'x'",
                                false)
                .find("unknown commit error"),
            std::string::npos);
  // Unsupported layouts name what is unsupported.
  for (uint32_t d = 0; d < abi::kCommitUnsupportedCount; ++d) {
    EXPECT_EQ(DescribeCommitError(abi::CommitError::kUnsupportedLayout, d, "'x'", false)
                  .find("unsupported image layout"),
              std::string::npos)
        << d;
  }
  // Details are 64-bit: a value whose low 32 bits name an enum member names nothing.
  const uint64_t wrapped = (1ull << 32) + 2;
  EXPECT_NE(DescribeCommitError(abi::CommitError::kUnsupportedFormat, wrapped, "'x'", false)
                .find("Image format 'unknown'"),
            std::string::npos);
  EXPECT_NE(DescribeCommitError(abi::CommitError::kUnsupportedLayout, wrapped, "'x'", false)
                .find("unsupported image layout 4294967298"),
            std::string::npos);
  // Whether the base changed is said, never guessed.
  EXPECT_NE(DescribeCommitError(abi::CommitError::kCorruptMetadata, 0x10000, "'b'", false)
                .find("nothing was changed"),
            std::string::npos);
  EXPECT_NE(DescribeCommitError(abi::CommitError::kCorruptMetadata, 0x10000, "'b'", true)
                .find("part of the committed data"),
            std::string::npos);
}

TEST(CommitRequest, WriteLimitsCoverTheDataAndSaturate) {
  const uint64_t gib = 1ull << 30;
  EXPECT_GE(CommitBaseWriteLimit(gib, 4 * gib), gib + 4 * gib + 4 * gib / 16);
  EXPECT_EQ(CommitBaseWriteLimit(UINT64_MAX - 10, gib), UINT64_MAX);
  EXPECT_EQ(CommitBaseWriteLimit(gib, UINT64_MAX), UINT64_MAX);
  EXPECT_GE(CommitTopWriteLimit(gib, 4 * gib), gib + 4 * gib / 16);
  EXPECT_EQ(CommitTopWriteLimit(UINT64_MAX, 1), UINT64_MAX);
}

}  // namespace
}  // namespace instar::vmm
