// Progress: silent for short work and when disabled; then one line rewritten in place,
// with the count, the elapsed time and an estimate of what is left; erased at the end.
#include "sim/app/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

namespace kvsim {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// A clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  Progress::Clock Get() {
    return [this] { return now; };
  }
};

TEST(Progress, PrintsNothingBeforeTheDelay) {
  std::ostringstream out;
  FakeClock clock;
  Progress p("kvsim sweep", "runs", 10, true, out, milliseconds(2000), clock.Get());
  clock.now += milliseconds(1999);
  p.Add();
  p.Finish();
  EXPECT_EQ(out.str(), "");
}

TEST(Progress, PrintsNothingWhenDisabledHoweverLong) {
  std::ostringstream out;
  FakeClock clock;
  Progress p("kvsim sweep", "runs", 10, false, out, milliseconds(0), clock.Get());
  clock.now += milliseconds(60'000);
  p.Add(5);
  p.Finish();
  EXPECT_EQ(out.str(), "");
}

TEST(Progress, ShowsTheCountTheTimeAndWhatIsLeftThenErasesTheLine) {
  std::ostringstream out;
  FakeClock clock;
  Progress p("kvsim sweep", "runs", 10, true, out, milliseconds(2000), clock.Get());
  clock.now += milliseconds(4000);
  p.Add(2);  // 2 of 10 in 4 s: 8 more take about 16 s
  EXPECT_TRUE(p.shown());
  EXPECT_EQ(out.str(), "\rkvsim sweep: 2/10 runs, 4 s, about 16 s left");
  clock.now += milliseconds(50);
  p.Add();  // within 100 ms of the last line: not redrawn
  EXPECT_EQ(out.str(), "\rkvsim sweep: 2/10 runs, 4 s, about 16 s left");
  clock.now += milliseconds(5950);
  p.Add(7);  // 10 of 10 at 10 s: nothing left, and the shorter line covers the longer
  const std::string first = "kvsim sweep: 2/10 runs, 4 s, about 16 s left";
  const std::string last = "kvsim sweep: 10/10 runs, 10 s";
  EXPECT_THAT(out.str(), HasSubstr("\r" + last + std::string(first.size() - last.size(), ' ')));
  p.Finish();
  EXPECT_THAT(out.str(), ::testing::EndsWith("\r" + std::string(last.size(), ' ') + "\r"));
}

TEST(Progress, WithoutATotalShowsTheCountAlone) {
  std::ostringstream out;
  FakeClock clock;
  Progress p("kvsim run", "requests finished", 0, true, out, milliseconds(0), clock.Get());
  clock.now += milliseconds(3000);
  p.Add(1500);
  EXPECT_EQ(out.str(), "\rkvsim run: 1500 requests finished, 3 s");
}

}  // namespace
}  // namespace kvsim
