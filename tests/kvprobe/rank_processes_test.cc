// Rank processes: a set that exits cleanly is waited for; one that fails or runs out
// of time ends the set, its peers killed, with a message naming what failed.
#include "tools/kvprobe/host/rank_processes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvprobe {
namespace {

using ::testing::HasSubstr;

std::string WaitError(const std::vector<pid_t>& pids, int timeout_s) {
  try {
    WaitForRanks(pids, "the test ranks", timeout_s);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a runtime_error";
  return "";
}

TEST(WaitForRanks, ReturnsWhenEveryRankExitsWithStatusZero) {
  const std::vector<pid_t> pids = {SpawnProcess({"/bin/sh", "-c", "exit 0"}),
                                   SpawnProcess({"/bin/sh", "-c", "sleep 0.1"})};
  EXPECT_NO_THROW(WaitForRanks(pids, "the test ranks", 30));
}

TEST(WaitForRanks, AFailedRankEndsTheSetKillingItsPeersAndNamesTheExitStatus) {
  const auto started = std::chrono::steady_clock::now();
  const pid_t peer = SpawnProcess({"/bin/sh", "-c", "exec sleep 30"});
  const std::string message = WaitError({peer, SpawnProcess({"/bin/sh", "-c", "exit 3"})}, 60);
  EXPECT_THAT(message, HasSubstr("a rank process of the test ranks failed (exit status 3)"));
  // The sleeping peer was killed and reaped, not waited for (exec: the kill reaches sleep
  // itself, which would otherwise outlive its shell holding the test's output open).
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  EXPECT_EQ(kill(peer, 0), -1);
}

TEST(WaitForRanks, ARankEndedByASignalIsNamed) {
  EXPECT_THAT(WaitError({SpawnProcess({"/bin/sh", "-c", "kill -9 $$"})}, 30),
              HasSubstr("(signal 9)"));
}

TEST(WaitForRanks, RanksStillRunningAtTheTimeoutAreKilled) {
  const pid_t pid = SpawnProcess({"/bin/sh", "-c", "exec sleep 30"});
  EXPECT_THAT(WaitError({pid}, 1), HasSubstr("the test ranks did not finish in 1 s"));
  EXPECT_EQ(kill(pid, 0), -1);
}

TEST(SpawnProcess, AProgramThatDoesNotExistIsAnErrorNamingIt) {
  // posix_spawn reports a missing program either at once or as the child's exit
  // status 127; both end as an error naming what failed.
  try {
    const pid_t pid = SpawnProcess({"/nonexistent/kvprobe-rank"});
    EXPECT_THAT(WaitError({pid}, 30), HasSubstr("exit status 127"));
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot start /nonexistent/kvprobe-rank"));
  }
}

TEST(SelfExecutablePath, IsAnAbsolutePathToThisTest) {
  const std::string self = SelfExecutablePath();
  EXPECT_EQ(self.front(), '/');
  EXPECT_THAT(self, HasSubstr("kvprobe_tests"));
}

}  // namespace
}  // namespace kvprobe
