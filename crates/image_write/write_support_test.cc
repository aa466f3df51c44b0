// The small pieces both writers use: DataRun (one step per contiguous run), SpanAt (the part
// of a request one table maps), EndTracker (how far a planner's steps reach), StickyError.
#include <vector>

#include "crates/image_write/data_run.h"
#include "crates/image_write/step.h"
#include "crates/image_write/table_cache.h"
#include "crates/image_write/write_error.h"
#include "gtest/gtest.h"

namespace instar::image_write {
namespace {

bool Keep(void* ctx, const Step& step) {
  static_cast<std::vector<Step>*>(ctx)->push_back(step);
  return true;
}
bool Refuse(void*, const Step&) { return false; }

TEST(DataRun, MergesWhatContinuesInTheFileAndInMemory) {
  std::vector<Step> steps;
  const StepSink sink{&steps, Keep};
  uint8_t buffer[4096];
  DataRun run;
  ASSERT_TRUE(run.Add(sink, 1024, 512, buffer));
  ASSERT_TRUE(run.Add(sink, 1536, 512, buffer + 512));   // continues both
  ASSERT_TRUE(run.Add(sink, 4096, 512, buffer + 1024));  // a gap in the file
  ASSERT_TRUE(run.Add(sink, 4608, 512, buffer + 3072));  // a gap in memory
  ASSERT_TRUE(run.Add(sink, 5120, 512, nullptr));        // zeros after data
  ASSERT_TRUE(run.Add(sink, 5632, 512, nullptr));        // zeros after zeros
  ASSERT_TRUE(run.Emit(sink));
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].offset, 1024u);
  EXPECT_EQ(steps[0].length, 1024u);
  EXPECT_EQ(steps[0].phase, Phase::kData);
  EXPECT_EQ(steps[1].offset, 4096u);
  EXPECT_EQ(steps[2].bytes, buffer + 3072);
  EXPECT_EQ(steps[3].kind, StepKind::kZero);
  EXPECT_EQ(steps[3].length, 1024u);
  EXPECT_EQ(run.steps(), 4u);
  ASSERT_TRUE(run.Emit(sink));  // nothing queued: nothing emitted
  EXPECT_EQ(steps.size(), 4u);

  DataRun refused;
  const StepSink no{nullptr, Refuse};
  ASSERT_TRUE(refused.Add(no, 8192, 512, buffer));
  EXPECT_FALSE(refused.Add(no, 0, 512, buffer));
  EXPECT_EQ(refused.failed_offset(), 8192u);
}

TEST(SpanAt, SplitsARequestAtTableBoundaries) {
  TableSpan s = SpanAt(510, 1030, 512);
  EXPECT_EQ(s.index, 0u);
  EXPECT_EQ(s.within, 510u);
  EXPECT_EQ(s.count, 2u);
  s = SpanAt(512, 1030, 512);
  EXPECT_EQ(s.index, 1u);
  EXPECT_EQ(s.within, 0u);
  EXPECT_EQ(s.count, 512u);
  s = SpanAt(1024, 1030, 512);
  EXPECT_EQ(s.count, 6u);
}

TEST(EndTracker, NotesTheFarthestByteAndForwards) {
  std::vector<Step> steps;
  const StepSink inner{&steps, Keep};
  EndTracker tracker{&inner, 100};
  const StepSink sink = tracker.sink();
  EXPECT_TRUE(Emit(sink, StepKind::kWrite, Phase::kData, 50, 10));
  EXPECT_EQ(tracker.end, 100u);
  EXPECT_TRUE(Emit(sink, StepKind::kZero, Phase::kData, 200, 56));
  EXPECT_EQ(tracker.end, 256u);
  EXPECT_TRUE(Emit(sink, StepKind::kSetSize, Phase::kTruncate, 0, 300));
  EXPECT_EQ(tracker.end, 300u);
  EXPECT_FALSE(Emit(sink, StepKind::kWrite, Phase::kData, ~0ull, 2));  // wraps
  EXPECT_EQ(steps.size(), 3u);
}

TEST(StickyError, KeepsTheFirstError) {
  StickyError sticky;
  EXPECT_TRUE(sticky.Keep({}).ok());
  EXPECT_FALSE(sticky.failed());
  EXPECT_FALSE(sticky.Keep(base::Fail(WriteError::kCorruptL2, 7)).ok());
  EXPECT_FALSE(sticky.Keep(base::Fail(WriteError::kIoError, 9)).ok());
  EXPECT_TRUE(sticky.failed());
  EXPECT_EQ(sticky.error().code, WriteError::kCorruptL2);
  EXPECT_EQ(sticky.error().detail, 7u);
}

}  // namespace
}  // namespace instar::image_write
