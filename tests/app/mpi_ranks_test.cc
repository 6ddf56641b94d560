// Tests for RunOnRanks on one process (no mpirun; tests/app/mpi_plan_test.sh and
// mpi_sweep_test.sh run it over ranks): every task runs once on the process's threads,
// each result reaches the calling thread once, and an error in a task or in the
// result handler ends the call with that error before the remaining tasks start.
#include "sim/app/mpi_ranks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sim/core/check.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::testing::HasSubstr;

TEST(RunOnRanks, OnOneProcessRunsEveryTaskOnceAndHandsEachResultToTheCaller) {
  ASSERT_EQ(MpiSize(), 1);
  constexpr size_t kTasks = 200;
  std::vector<std::atomic<int>> runs(kTasks);
  std::vector<std::string> results(kTasks);
  const std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  bool all_on_caller = true, all_from_rank_0 = true;
  const bool lead = RunOnRanks(
      kTasks, 3,
      [&](size_t i) {
        ++runs[i];
        return std::string(i % 7, 'x') + std::to_string(i * i);
      },
      [&](size_t i, std::string bytes, int rank) {
        ++calls;
        all_on_caller = all_on_caller && std::this_thread::get_id() == caller;
        all_from_rank_0 = all_from_rank_0 && rank == 0;
        results[i] = std::move(bytes);
      });
  EXPECT_TRUE(lead);
  EXPECT_EQ(calls, static_cast<int>(kTasks));
  EXPECT_TRUE(all_on_caller);
  EXPECT_TRUE(all_from_rank_0);
  for (size_t i = 0; i < kTasks; ++i) {
    EXPECT_EQ(runs[i].load(), 1) << i;
    EXPECT_EQ(results[i], std::string(i % 7, 'x') + std::to_string(i * i)) << i;
  }
}

TEST(RunOnRanks, WithNoTasksReturnsWithoutCallingAnything) {
  int calls = 0;
  EXPECT_TRUE(RunOnRanks(
      0, 2,
      [&](size_t) {
        ++calls;
        return std::string();
      },
      [&](size_t, std::string, int) { ++calls; }));
  EXPECT_EQ(calls, 0);
}

TEST(RunOnRanks, ATaskErrorEndsTheCallBeforeTheRemainingTasksStart) {
  constexpr size_t kTasks = 1000;  // 1 ms each: half a second on two threads if none stopped
  std::atomic<int> started{0};
  const std::string message = InputErrorMessage([&] {
    RunOnRanks(
        kTasks, 2,
        [&](size_t i) {
          ++started;
          if (i == 3) throw InputError("task 3 failed");
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return std::string();
        },
        [](size_t, std::string, int) {});
  });
  EXPECT_THAT(message, HasSubstr("task 3 failed"));
  EXPECT_LT(started.load(), 100);
}

TEST(RunOnRanks, AnErrorOfTheResultHandlerEndsTheCall) {
  constexpr size_t kTasks = 1000;
  std::atomic<int> started{0};
  const std::string message = InputErrorMessage([&] {
    RunOnRanks(
        kTasks, 2,
        [&](size_t) {
          ++started;
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return std::string("r");
        },
        [](size_t i, std::string, int) {
          if (i == 5) throw InputError("cannot write result 5");
        });
  });
  EXPECT_THAT(message, HasSubstr("cannot write result 5"));
  EXPECT_LT(started.load(), 100);
}

}  // namespace
}  // namespace kvsim
