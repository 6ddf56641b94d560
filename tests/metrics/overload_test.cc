// Tests for the overload rule (TestOverload, Summary::overloaded) and its inputs, the
// Backlog and the offered load, on loads served by hand: a queue that drains between
// bursts is not overloaded however long a late burst waits; a queue that never drains
// while the wait grows is, even when it was already long in the first quarter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/metrics/metrics.h"

namespace kvsim {
namespace {

Nanos Ms(int64_t ms) { return Nanos(ms * 1'000'000); }

// The summary of requests arriving at `arrivals_ms` (ascending), request i entering its
// first iteration at starts_ms[i] (at or after its arrival, ascending), reported as the
// event loop reports them: arrivals (offered and queued at once) and starts in time
// order, an arrival before a start at the same instant, each request once finished
// (10 ms after its start).
Summary Serve(const std::vector<int64_t>& arrivals_ms, const std::vector<int64_t>& starts_ms) {
  Metrics m;
  size_t started = 0;
  for (const int64_t arrival : arrivals_ms) {
    while (started < starts_ms.size() && starts_ms[started] < arrival) {
      m.CountStarted(Ms(starts_ms[started++]));
    }
    m.CountOffered(Ms(arrival));
    m.CountQueued(Ms(arrival));
  }
  while (started < starts_ms.size()) m.CountStarted(Ms(starts_ms[started++]));
  for (size_t i = 0; i < arrivals_ms.size(); ++i) {
    RequestRecord r;
    r.id = static_cast<int64_t>(i);
    r.arrival = Ms(arrivals_ms[i]);
    r.first_scheduled = Ms(starts_ms[i]);
    r.first_token = r.finish = r.first_scheduled + Ms(10);
    r.output_tokens = 1;
    m.RecordRequest(r);
  }
  return m.Summarize();
}

// One server that starts a request a second, first come first served: request i starts
// at max(its arrival, the previous start + 1 s).
std::vector<int64_t> OnePerSecond(const std::vector<int64_t>& arrivals_ms) {
  std::vector<int64_t> starts;
  for (const int64_t a : arrivals_ms) {
    starts.push_back(starts.empty() ? a : std::max(a, starts.back() + 1000));
  }
  return starts;
}

// `count` arrivals at `at_ms` appended to `arrivals_ms`.
void Burst(std::vector<int64_t>& arrivals_ms, int count, int64_t at_ms) {
  arrivals_ms.insert(arrivals_ms.end(), static_cast<size_t>(count), at_ms);
}

// --- Backlog -----------------------------------------------------------------

TEST(Backlog, AgeIsHowLongRequestsHadWaitedWithoutABreakWhenTheLastOneArrived) {
  Backlog b;
  b.Observe(Ms(0));  // A arrives to an empty queue
  b.Join(Ms(0));
  b.Observe(Ms(500));  // B arrives; A has waited since 0
  EXPECT_EQ(b.age_at_last_arrival(), Ms(500));
  b.Join(Ms(500));
  b.Leave(Ms(600));    // A starts; B still waits
  b.Leave(Ms(800));    // B starts: empty at 800 ms
  b.Observe(Ms(900));  // C arrives to an empty queue
  EXPECT_EQ(b.age_at_last_arrival(), Nanos(0));
  b.Join(Ms(900));
  b.Observe(Ms(2000));  // D arrives; C has waited since 900 ms
  EXPECT_EQ(b.age_at_last_arrival(), Ms(1100));
}

TEST(Backlog, ARequestOnItsWayWhenTheQueueEmptiedJoinsAQueueEmptyUntilThen) {
  // A request arriving at 20 ms reaches its replica at 35 ms, after the queue emptied at
  // 30 ms: the queue was last empty at 30 ms, not 20 ms, so at 100 ms it is 70 ms old.
  Backlog b;
  b.Join(Ms(0));
  b.Leave(Ms(30));
  b.Join(Ms(20));
  b.Observe(Ms(100));
  EXPECT_EQ(b.age_at_last_arrival(), Ms(70));
}

TEST(Backlog, RefusesAStartThatWasNeverQueued) {
  Backlog b;
  EXPECT_THROW(b.Leave(Ms(1)), InvariantError);
}

// --- The rule ----------------------------------------------------------------

// A summary whose quarters waited `first_s` and `last_s`, whose arrivals span `span_s`
// and whose queues had waited `age_s` without a break at the last arrival.
Summary Load(double first_s, double last_s, double span_s, double age_s) {
  Summary s;
  s.queue_first_quarter_s = first_s;
  s.queue_last_quarter_s = last_s;
  s.arrival_span_s = span_s;
  s.backlog_age_s = age_s;
  return s;
}

TEST(TestOverload, NeedsTheWaitToGrowAndTheBacklogNeverToDrainInTheLastQuarter) {
  // Span 100 s: the backlog must be over 25 s old; the wait must grow over 1 s.
  EXPECT_TRUE(TestOverload(Load(2, 5, 100, 30)).overloaded());
  EXPECT_FALSE(TestOverload(Load(2, 5, 100, 20)).overloaded());    // drained at 80 s
  EXPECT_FALSE(TestOverload(Load(2, 2.5, 100, 30)).overloaded());  // grew 0.5 s
  // At the limits exactly: not overloaded (both must be exceeded).
  EXPECT_FALSE(TestOverload(Load(2, 3, 100, 30)).overloaded());
  EXPECT_FALSE(TestOverload(Load(2, 5, 100, 25)).overloaded());
  // The slack is the caller's: growth 3 s against 4 s.
  EXPECT_FALSE(TestOverload(Load(2, 5, 100, 30), 4.0).overloaded());
}

TEST(TestOverload, GrowthIsADifferenceSoAQueueLongFromTheStartStillCounts) {
  // 10 s to 18 s: under 2 x (and 4 x) the first quarter, yet 8 s more.
  const OverloadTest t = TestOverload(Load(10, 18, 100, 90));
  EXPECT_DOUBLE_EQ(t.growth_s, 8);
  EXPECT_DOUBLE_EQ(t.backlog_limit_s, 25);
  EXPECT_TRUE(t.overloaded());
}

// --- Loads served by hand ----------------------------------------------------

TEST(MetricsOverload, ALateBurstThatDrainsBeforeTheLastArrivalIsNotOverloaded) {
  // Bursts at 0, 25, 50, 75, 98 and 100 s of 2, 5, 10, 20, 3 and 1 requests (0.41 req/s
  // against 1 served): each burst's k-th request (from 0) waits k s, and the burst at
  // 75 s drains at 94 s. Span 100 s, quarters of 25 s. First quarter: waits 0, 1 and
  // 0..4, 11 s over 7. Last: 0..19 (190 s), 98 s's 0, 1, 2 and 100 s's 1 (it starts at
  // 101 s, after 98 s's third): 194 s over 24, 8.083 s. The wait grew 6.5 s, but the
  // queue was empty at 98 s, 2 s before the last arrival: it drains between bursts.
  std::vector<int64_t> arrivals;
  for (const auto& [count, at_s] : {std::pair{2, 0}, {5, 25}, {10, 50}, {20, 75}, {3, 98}}) {
    Burst(arrivals, count, 1000 * at_s);
  }
  Burst(arrivals, 1, 100'000);
  const Summary s = Serve(arrivals, OnePerSecond(arrivals));
  EXPECT_NEAR(s.queue_first_quarter_s, 11.0 / 7, 1e-9);
  EXPECT_NEAR(s.queue_last_quarter_s, 194.0 / 24, 1e-9);
  EXPECT_DOUBLE_EQ(s.arrival_span_s, 100);
  EXPECT_DOUBLE_EQ(s.backlog_age_s, 2);
  EXPECT_FALSE(s.overloaded);
}

TEST(MetricsOverload, ASteadyOverloadIsOverloaded) {
  // One arrival every 0.5 s, 100 of them (2 req/s against 1 served): request i starts at
  // i s and waits 0.5 i s. The queue is empty last at 0.5 s (request 1 arrives to it),
  // so at the last arrival, 49.5 s, it is 49 s old: over a quarter of the span. Quarters of
  // 12.375 s: first i = 0..24, mean wait 6 s; last i = 75..99, 43.5 s.
  std::vector<int64_t> arrivals;
  for (int64_t i = 0; i < 100; ++i) arrivals.push_back(500 * i);
  const Summary s = Serve(arrivals, OnePerSecond(arrivals));
  EXPECT_DOUBLE_EQ(s.offered_qps, 2.0);  // 99 gaps in 49.5 s
  EXPECT_NEAR(s.queue_first_quarter_s, 6.0, 1e-9);
  EXPECT_NEAR(s.queue_last_quarter_s, 43.5, 1e-9);
  EXPECT_DOUBLE_EQ(s.backlog_age_s, 49);
  EXPECT_TRUE(s.overloaded);
}

TEST(MetricsOverload, AnOverloadThatBeginsLateInTheTraceIsOverloaded) {
  // 31 arrivals every 2 s (0 to 60 s), served at once; then 80 every 0.5 s from 60.25 s
  // to 99.75 s against one served a second. Request j of those starts at 61 + j s and
  // waits 0.75 + 0.5 j s; the queue never empties after 60.25 s, so at the last arrival
  // it is 39.5 s old: under half of the 99.75 s span, over a quarter (24.94 s). First
  // quarter: the first 13 arrivals, no wait. Last quarter (from 74.81 s): j = 30..79,
  // mean wait 0.75 + 0.5 x 54.5 = 28 s.
  std::vector<int64_t> arrivals;
  for (int64_t i = 0; i <= 30; ++i) arrivals.push_back(2000 * i);
  for (int64_t j = 0; j < 80; ++j) arrivals.push_back(60'250 + 500 * j);
  const Summary s = Serve(arrivals, OnePerSecond(arrivals));
  EXPECT_DOUBLE_EQ(s.arrival_span_s, 99.75);
  EXPECT_NEAR(s.queue_first_quarter_s, 0.0, 1e-9);
  EXPECT_NEAR(s.queue_last_quarter_s, 28.0, 1e-9);
  EXPECT_DOUBLE_EQ(s.backlog_age_s, 39.5);
  EXPECT_TRUE(s.overloaded);
}

TEST(MetricsOverload, ASteadyOverloadThatQueuesFromItsFirstQuarterIsOverloaded) {
  // 20 requests at 0 s, then 80 at 0.8 s intervals (1.25 req/s against 1 served, 0.8 s
  // to 64 s). Request k starts at k s: the burst's wait k s, then request 20 + j arriving
  // at 0.8 (j + 1) s waits 19.2 + 0.2 j s. The queue never empties after 0 s. Quarters
  // of 16 s: first, the burst (190 s) and j = 0..19 (422 s), 612 s over 40 = 15.3 s;
  // last, j = 59..79, 19.2 + 0.2 x 69 = 33 s. 33 s is under 4 x (and 2 x) 15.3 s, but
  // 17.7 s more, with a backlog 64 s old at the last arrival.
  std::vector<int64_t> arrivals;
  Burst(arrivals, 20, 0);
  for (int64_t j = 0; j < 80; ++j) arrivals.push_back(800 * (j + 1));
  const Summary s = Serve(arrivals, OnePerSecond(arrivals));
  EXPECT_NEAR(s.queue_first_quarter_s, 15.3, 1e-9);
  EXPECT_NEAR(s.queue_last_quarter_s, 33.0, 1e-9);
  EXPECT_DOUBLE_EQ(s.backlog_age_s, 64);
  EXPECT_TRUE(s.overloaded);
}

TEST(MetricsOverload, FlagsAQueueWhoseWaitGrowsWithTheTrace) {
  // Arrivals every second for 100 s, request t waiting 0.1 t s (to 9.9 s), or 50 ms. The
  // growing one: request t - 1 starts at 1.1 (t - 1) s, not before t arrives once t >= 11,
  // so the queue is last empty at 10 s and 89 s old at the last arrival, 99 s.
  for (const bool grows : {false, true}) {
    std::vector<int64_t> arrivals, starts;
    for (int64_t t = 0; t < 100; ++t) {
      arrivals.push_back(1000 * t);
      starts.push_back(1000 * t + (grows ? 100 * t : 50));
    }
    const Summary s = Serve(arrivals, starts);
    EXPECT_DOUBLE_EQ(s.offered_qps, 1.0);  // 99 gaps in 99 s
    EXPECT_DOUBLE_EQ(s.backlog_age_s, grows ? 89 : 0);
    EXPECT_EQ(s.overloaded, grows);
  }
}

TEST(MetricsOverload, AWaitThatStaysShortIsNotOverloaded) {
  // One arrival every 2 s (0.5 req/s against 1 served): no request waits.
  std::vector<int64_t> arrivals;
  for (int64_t i = 0; i < 100; ++i) arrivals.push_back(2000 * i);
  const Summary s = Serve(arrivals, OnePerSecond(arrivals));
  EXPECT_DOUBLE_EQ(s.offered_qps, 0.5);
  EXPECT_EQ(s.queue_last_quarter_s, 0);
  EXPECT_EQ(s.backlog_age_s, 0);
  EXPECT_FALSE(s.overloaded);
}

TEST(MetricsOverload, RequestsThatAllArriveAtOnceHaveNoOfferedRate) {
  // 200 requests at 5 s: a batch, not a rate. Its span is 0 s, so its rate is undefined
  // (NaN, null in JSON), never 0 req/s; both quarters are the whole batch (mean wait
  // 99.5 s), and its backlog is 0 s old at its last arrival: not overloaded.
  std::vector<int64_t> arrivals;
  Burst(arrivals, 200, 5000);
  const Summary s = Serve(arrivals, OnePerSecond(arrivals));
  EXPECT_EQ(s.requests_total, 200);
  EXPECT_EQ(s.arrival_span_s, 0);
  EXPECT_TRUE(std::isnan(s.offered_qps));
  EXPECT_NEAR(s.queue_first_quarter_s, 99.5, 1e-9);
  EXPECT_NEAR(s.queue_last_quarter_s, 99.5, 1e-9);
  EXPECT_EQ(s.backlog_age_s, 0);
  EXPECT_FALSE(s.overloaded);
}

}  // namespace
}  // namespace kvsim
