// Tests for ParallelFor: every index runs once whatever the width, the error of the
// lowest failing index surfaces, and the progress hook counts each finished task once,
// one call at a time.
#include "sim/core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvsim {
namespace {

TEST(ParallelFor, RunsEveryIndexOnceAtAnyWidth) {
  for (int threads : {1, 2, 3, 8, 0}) {
    SCOPED_TRACE(threads);
    std::vector<std::atomic<int>> runs(37);
    ParallelFor(runs.size(), threads, [&](size_t i) { ++runs[i]; });
    for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].load(), 1) << i;
  }
}

TEST(ParallelFor, NoTasksRunsNothing) {
  bool ran = false;
  ParallelFor(
      0, 4, [&](size_t) { ran = true; }, [&](size_t) { ran = true; });
  EXPECT_FALSE(ran);
}

TEST(ParallelFor, RethrowsTheErrorOfTheLowestFailingIndexAfterAllRan) {
  std::atomic<int> ran{0};
  try {
    ParallelFor(20, 4, [&](size_t i) {
      ++ran;
      if (i == 7 || i == 13) throw std::runtime_error("task " + std::to_string(i));
    });
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "task 7");
  }
  EXPECT_EQ(ran.load(), 20);
}

TEST(ParallelFor, TheProgressHookCountsEachFinishedTaskInOrderOneCallAtATime) {
  std::vector<size_t> counts;  // unguarded: the hook's calls must not overlap
  std::atomic<int> inside{0};
  bool overlapped = false;
  ParallelFor(
      50, 4, [](size_t) {},
      [&](size_t done) {
        if (++inside > 1) overlapped = true;
        counts.push_back(done);
        --inside;
      });
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(counts.size(), 50u);
  for (size_t k = 0; k < counts.size(); ++k) EXPECT_EQ(counts[k], k + 1);
}

TEST(ParallelFor, AFailedTaskIsNotCountedAsDone) {
  size_t last = 0;
  EXPECT_THROW(ParallelFor(
                   10, 2,
                   [](size_t i) {
                     if (i == 3) throw std::runtime_error("no");
                   },
                   [&](size_t done) { last = done; }),
               std::runtime_error);
  EXPECT_EQ(last, 9u);
}

}  // namespace
}  // namespace kvsim
