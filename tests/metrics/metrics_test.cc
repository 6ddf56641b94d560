// Tests for Metrics::Summarize on hand-made request records and iteration samples,
// and for NearestRank.
#include "sim/metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

Nanos Ms(int64_t ms) { return Nanos(ms * 1'000'000); }

struct Row {
  int64_t id, queue_ms, ttft_ms, e2e_ms, output_tokens;
};

// Ten requests; request i arrives at i seconds and has a 100 x i token prompt.
//   id  queue  TTFT   E2E  output  TPOT = (E2E - TTFT) / (output - 1)
//    1     50   300  2300      21  2000 / 20 = 100
//    2     10   700  1700      11  1000 / 10 = 100
//    3     90   100  3100      31  3000 / 30 = 100
//    4     30  1000  1000       1  (none: a single token)
//    5     70   500  1000      11   500 / 10 =  50
//    6     20   200  4200      41  4000 / 40 = 100
//    7    100   900  2900      21  2000 / 20 = 100
//    8     40   400  1400       2  1000 /  1 = 1000
//    9     80   800  1800      11  1000 / 10 = 100
//   10     60   600  3600      31  3000 / 30 = 100
// All times in ms. Finish = arrival + E2E; the last is request 10 at 10 + 3.6 = 13.6 s.
const std::vector<Row> kRows = {
    {10, 60, 600, 3600, 31}, {1, 50, 300, 2300, 21},  {2, 10, 700, 1700, 11},
    {3, 90, 100, 3100, 31},  {4, 30, 1000, 1000, 1},  {5, 70, 500, 1000, 11},
    {6, 20, 200, 4200, 41},  {7, 100, 900, 2900, 21}, {8, 40, 400, 1400, 2},
    {9, 80, 800, 1800, 11},
};

Metrics TenRequests(MetricsOptions options = {}) {
  Metrics m(options);
  for (const Row& row : kRows) {
    RequestRecord r;
    r.id = row.id;
    r.arrival = Ms(1000 * row.id);
    r.first_scheduled = r.arrival + Ms(row.queue_ms);
    r.first_token = r.arrival + Ms(row.ttft_ms);
    r.finish = r.arrival + Ms(row.e2e_ms);
    r.prompt_tokens = 100 * row.id;
    r.output_tokens = row.output_tokens;
    r.preemptions = row.id % 3 == 0 ? 1 : 0;  // requests 3, 6, 9
    m.RecordRequest(r);
  }
  return m;
}

TEST(MetricsSummary, TtftPercentilesAreNearestRanksOfTheRecords) {
  const Summary s = TenRequests().Summarize();
  // TTFT sorted: 100 200 ... 1000 ms. p50 = 5th, p90 = 9th, p99 = ceil(9.9) = 10th.
  EXPECT_DOUBLE_EQ(s.ttft_s.p50, 0.5);
  EXPECT_DOUBLE_EQ(s.ttft_s.p90, 0.9);
  EXPECT_DOUBLE_EQ(s.ttft_s.p99, 1.0);
  EXPECT_NEAR(s.ttft_s.mean, 0.55, 1e-12);  // 5500 ms / 10
}

TEST(MetricsSummary, QueueDelayIsFirstScheduledMinusArrival) {
  const Summary s = TenRequests().Summarize();
  // Sorted: 10 20 ... 100 ms.
  EXPECT_DOUBLE_EQ(s.queue_s.p50, 0.05);
  EXPECT_DOUBLE_EQ(s.queue_s.p90, 0.09);
  EXPECT_DOUBLE_EQ(s.queue_s.p99, 0.1);
  EXPECT_NEAR(s.queue_s.mean, 0.055, 1e-12);
}

TEST(MetricsSummary, EndToEndLatencyPercentilesAreNearestRanks) {
  const Summary s = TenRequests().Summarize();
  // Sorted: 1000 1000 1400 1700 1800 | 2300 2900 3100 3600 4200 ms; sum 23000.
  EXPECT_DOUBLE_EQ(s.e2e_s.p50, 1.8);
  EXPECT_DOUBLE_EQ(s.e2e_s.p90, 3.6);
  EXPECT_DOUBLE_EQ(s.e2e_s.p99, 4.2);
  EXPECT_NEAR(s.e2e_s.mean, 2.3, 1e-12);
}

TEST(MetricsSummary, TpotSkipsSingleTokenRequests) {
  const Summary s = TenRequests().Summarize();
  // Nine values (request 4 has one token): 50, 100 x 7, 1000 ms.
  // p50 = ceil(4.5) = 5th = 100; p90 = ceil(8.1) = 9th = 1000; p99 = ceil(8.91) = 9th.
  EXPECT_DOUBLE_EQ(s.tpot_s.p50, 0.1);
  EXPECT_DOUBLE_EQ(s.tpot_s.p90, 1.0);
  EXPECT_DOUBLE_EQ(s.tpot_s.p99, 1.0);
  EXPECT_NEAR(s.tpot_s.mean, 1.750 / 9, 1e-12);  // (50 + 700 + 1000) ms / 9
}

TEST(MetricsSummary, ThroughputIsCompletedOverTheLastFinish) {
  const Summary s = TenRequests().Summarize();
  // Makespan: the latest finish (request 10, recorded first): 10 s + 3.6 s.
  EXPECT_DOUBLE_EQ(s.makespan_s, 13.6);
  EXPECT_EQ(s.requests_completed, 10);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 10 / 13.6);
  // Output tokens: 31+21+11+31+1+11+41+21+2+11 = 181; prompts: 100 x (1+...+10) = 5500.
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 181 / 13.6);
  EXPECT_DOUBLE_EQ(s.total_tokens_per_s, (181 + 5500) / 13.6);
  EXPECT_EQ(s.preemptions, 3);
}

IterationSample Sample(int64_t duration_ms, int64_t running, int64_t allocated, int64_t live) {
  IterationSample x;
  x.duration = Ms(duration_ms);
  x.running = running;
  x.allocated_bytes = allocated;
  x.live_bytes = live;
  return x;
}

TEST(MetricsSummary, MemoryAndBatchMeansAreWeightedByBusyTime) {
  Metrics m;
  m.RecordIteration(Sample(10, 1, 100, 50));
  m.RecordIteration(Sample(30, 2, 200, 100));
  m.RecordIteration(Sample(60, 5, 400, 300));
  const Summary s = m.Summarize();
  // Busy 100 ms.
  // allocated: (10 x 100 + 30 x 200 + 60 x 400) / 100 = 31000 / 100 = 310
  // live:      (10 x 50 + 30 x 100 + 60 x 300) / 100 = 21500 / 100 = 215
  // running:   (10 x 1 + 30 x 2 + 60 x 5) / 100 = 370 / 100 = 3.7
  EXPECT_DOUBLE_EQ(s.mean_allocated_bytes, 310);
  EXPECT_DOUBLE_EQ(s.mean_live_bytes, 215);
  EXPECT_DOUBLE_EQ(s.mean_running, 3.7);
  // 1 - 215 / 310 = 95 / 310
  EXPECT_DOUBLE_EQ(s.fragmentation, 95.0 / 310.0);
  EXPECT_EQ(s.peak_allocated_bytes, 400);
  EXPECT_EQ(s.max_running, 5);
  EXPECT_EQ(s.iterations, 3);
}

// Collects what an observer is shown.
struct Seen : MetricsObserver {
  std::vector<int64_t> request_ids;
  std::vector<Nanos> durations;
  void OnRequest(const RequestRecord& r) override { request_ids.push_back(r.id); }
  void OnIteration(const IterationSample& x) override { durations.push_back(x.duration); }
};

TEST(MetricsObservers, SeeEveryRequestAndIterationAsTheyAreRecorded) {
  Seen a, b;
  Metrics m;
  m.AddObserver(&a);
  m.AddObserver(&b);
  m.RecordIteration(Sample(10, 1, 100, 50));
  m.RecordIteration(Sample(20, 1, 100, 50));
  RequestRecord r;
  r.id = 7;
  r.output_tokens = 1;
  m.RecordRequest(r);
  for (const Seen* seen : {&a, &b}) {
    EXPECT_EQ(seen->durations, (std::vector<Nanos>{Ms(10), Ms(20)}));
    EXPECT_EQ(seen->request_ids, std::vector<int64_t>{7});
  }
  // Aggregates are kept either way; the records only when asked.
  EXPECT_EQ(m.Summarize().iterations, 2);
  EXPECT_TRUE(m.records().empty());
}

// Records where an observer was shown each iteration: (start ms, replica).
struct SeenStarts : MetricsObserver {
  std::vector<std::pair<int64_t, int64_t>> starts;
  void OnRequest(const RequestRecord&) override {}
  void OnIteration(const IterationSample& x) override {
    starts.emplace_back(x.start.count() / 1'000'000, x.replica);
  }
};

IterationSample StartingAt(int64_t start_ms, int64_t replica) {
  IterationSample x;
  x.start = Ms(start_ms);
  x.duration = Ms(1);
  x.replica = replica;
  return x;
}

TEST(MetricsObservers, SeeSeveralReplicasIterationsInStartOrderOnceTheClockPassesThem) {
  SeenStarts seen;
  Metrics m;
  m.AddObserver(&seen);
  m.OrderIterations();
  // Replica 1 records a skip-ahead run (starts 5, 7, 9 ms) before replica 0 records
  // its iterations at 5 and 6 ms.
  m.AdvanceClock(Ms(5));
  m.RecordIteration(StartingAt(5, 1));
  m.RecordIteration(StartingAt(7, 1));
  m.RecordIteration(StartingAt(9, 1));
  m.RecordIteration(StartingAt(5, 0));
  EXPECT_TRUE(seen.starts.empty());  // nothing starts before the clock yet
  m.AdvanceClock(Ms(6));
  // Both iterations at 5 ms, replica 0 first; 7 and 9 ms are not yet passed.
  EXPECT_EQ(seen.starts, (std::vector<std::pair<int64_t, int64_t>>{{5, 0}, {5, 1}}));
  m.RecordIteration(StartingAt(6, 0));
  m.AdvanceClock(Ms(8));
  m.FlushIterations();
  EXPECT_EQ(seen.starts,
            (std::vector<std::pair<int64_t, int64_t>>{{5, 0}, {5, 1}, {6, 0}, {7, 1}, {9, 1}}));
  // The totals count every iteration, held or not.
  EXPECT_EQ(m.Summarize().iterations, 5);
}

TEST(MetricsSummary, CarriesTheRunsFactsBesideWhatTheMetricsCounted) {
  RunFacts facts;
  facts.kv_manager = "vattention";
  facts.prefix_caching = true;
  facts.kv_bytes_per_token = 131072;
  facts.kv_capacity_bytes = int64_t{40} << 30;
  facts.is_vattention = true;
  facts.page_bytes = 2 << 20;
  facts.skipped_rows = "3 failed requests left out";
  facts.events = 12345;
  facts.wall_s = 0.25;
  const Summary s = TenRequests().Summarize(facts);
  EXPECT_EQ(s.kv_manager, "vattention");
  EXPECT_TRUE(s.prefix_caching);
  EXPECT_EQ(s.kv_bytes_per_token, 131072);
  EXPECT_EQ(s.kv_capacity_bytes, int64_t{40} << 30);
  EXPECT_TRUE(s.is_vattention);
  EXPECT_EQ(s.page_bytes, 2 << 20);
  EXPECT_EQ(s.skipped_rows, "3 failed requests left out");
  EXPECT_EQ(s.events, 12345);
  EXPECT_EQ(s.wall_s, 0.25);
  // And the counted figures are those of the same metrics without facts.
  const Summary plain = TenRequests().Summarize();
  EXPECT_EQ(s.requests_completed, plain.requests_completed);
  EXPECT_EQ(s.ttft_s.p99, plain.ttft_s.p99);
  EXPECT_EQ(plain.kv_manager, "");
  EXPECT_EQ(plain.events, 0);
}

TEST(MetricsRecords, AreKeptInCompletionOrderOnlyWhenAsked) {
  EXPECT_TRUE(TenRequests().records().empty());
  const Metrics kept = TenRequests({.keep_records = true});
  ASSERT_EQ(kept.records().size(), kRows.size());
  for (size_t i = 0; i < kRows.size(); ++i) EXPECT_EQ(kept.records()[i].id, kRows[i].id);
}

TEST(MetricsSummary, BeyondTheExactLimitPercentilesComeFromAHistogramAndMeansStayExact) {
  // Limit 4: the fifth request moves the TTFTs into the histogram.
  const Summary exact = TenRequests().Summarize();
  const Summary binned = TenRequests({.exact_percentile_limit = 4}).Summarize();
  EXPECT_TRUE(exact.percentiles_exact);
  EXPECT_FALSE(binned.percentiles_exact);
  // TTFTs sorted: 100 200 ... 1000 ms; p50 = 5th = 500 ms, p90 = 9th = 900, p99 = 1000.
  EXPECT_NEAR(binned.ttft_s.p50, 0.5, 0.5 / 256);
  EXPECT_NEAR(binned.ttft_s.p90, 0.9, 0.9 / 256);
  EXPECT_NEAR(binned.ttft_s.p99, 1.0, 1.0 / 256);
  EXPECT_NEAR(binned.ttft_s.mean, 0.55, 1e-12);  // 5500 ms / 10
  EXPECT_NEAR(binned.e2e_s.mean, exact.e2e_s.mean, 1e-12);
  EXPECT_NEAR(binned.tpot_s.p50, exact.tpot_s.p50, exact.tpot_s.p50 / 256);
  // The rest of the summary does not depend on the limit.
  EXPECT_EQ(binned.requests_completed, exact.requests_completed);
  EXPECT_EQ(binned.makespan_s, exact.makespan_s);
}

TEST(QueueGrowth, ComparesTheFirstAndLastQuarterOfTheArrivalsAsTheBinsWiden) {
  QueueGrowth g;
  // Arrivals every second for 200 s (the 1 ms bins widen to 64 ms to hold them: 4,096 x
  // 32 ms ends at 131 s), each waiting a tenth of its arrival time: 0.0, 0.1, ..., 19.9 s.
  for (int t = 0; t < 200; ++t) g.Add(Ms(1000 * t), Ms(100 * t));
  // Span [0, 199] s, quarter 49.75 s. First quarter [0, 49.75]: arrivals 0..49 (the bin
  // holding 49.75 holds none), mean wait 2.45 s. Last quarter [149.25, 199]: the bin
  // holding 149.25 s is [149.248, 149.312), past the arrival at 149: arrivals 150..199,
  // mean wait 17.45 s.
  EXPECT_NEAR(g.FirstQuarterMeanS(), 2.45, 1e-9);
  EXPECT_NEAR(g.LastQuarterMeanS(), 17.45, 1e-9);
}

TEST(QueueGrowth, QuartersOfASubSecondBurstAreItsOwnNotOneBinsMean) {
  QueueGrowth g;
  // Ten arrivals 0.1 s apart, recorded out of order; waits below. Span 0.9 s, quarter
  // 0.225 s: the first quarter holds arrivals 0, 0.1, 0.2 (waits 0, 0.91, 0.81: mean
  // 0.5733 s), the last 0.7, 0.8, 0.9 (0.31, 0.21, 8.12: mean 2.88 s).
  const int waits_ms[] = {0, 910, 810, 710, 610, 510, 410, 310, 210, 8120};
  for (int i = 9; i >= 0; --i) g.Add(Ms(100 * i), Ms(waits_ms[i]));
  EXPECT_NEAR(g.FirstQuarterMeanS(), 1.72 / 3, 1e-9);
  EXPECT_NEAR(g.LastQuarterMeanS(), 8.64 / 3, 1e-9);
}

TEST(QueueGrowth, QuartersStartAtTheEarliestArrivalNotAtTimeZero) {
  QueueGrowth g;
  // Arrivals at 100, 101, ..., 120 s: quarter 5 s. First [100, 105]: waits 1..6 s, mean
  // 3.5; last [115, 120]: waits 16..21 s, mean 18.5 (from t = 0 the first quarter would
  // be [0, 30] s and take in the arrivals up to 30 s).
  for (int t = 100; t <= 120; ++t) g.Add(Ms(1000 * t), Ms(1000 * (t - 99)));
  EXPECT_NEAR(g.FirstQuarterMeanS(), 3.5, 1e-9);
  EXPECT_NEAR(g.LastQuarterMeanS(), 18.5, 1e-9);
}

TEST(QueueGrowth, WithoutArrivalsBothQuartersAreZero) {
  const QueueGrowth g;
  EXPECT_EQ(g.FirstQuarterMeanS(), 0);
  EXPECT_EQ(g.LastQuarterMeanS(), 0);
}

TEST(Distribution, IsExactUpToItsLimitThenWithinTwoToTheMinusEight) {
  Distribution d(3);
  for (double v : {0.003, 0.001, 0.002}) d.Add(v);
  EXPECT_TRUE(d.exact());
  Percentiles p = d.Summarize();
  EXPECT_EQ(p.p50, 0.002);  // exact: 2nd of 3
  EXPECT_EQ(p.p99, 0.003);
  d.Add(0.004);
  EXPECT_FALSE(d.exact());
  EXPECT_EQ(d.count(), 4);
  p = d.Summarize();
  EXPECT_NEAR(p.mean, 0.0025, 1e-15);
  EXPECT_NEAR(p.p50, 0.002, 0.002 / 256);  // 2nd of 4
  EXPECT_NEAR(p.p90, 0.004, 0.004 / 256);
}

TEST(MetricsSummary, TimeBetweenTokensComesFromTheHistogram) {
  Metrics m;
  for (int64_t gap_ms : {30, 10, 40, 20}) m.RecordToken(Ms(gap_ms));
  const Summary s = m.Summarize();
  EXPECT_NEAR(s.tbt_s.mean, 0.025, 1e-15);  // (10 + 20 + 30 + 40) / 4 ms, exact
  // p50 = 2nd = 20 ms; p90 = p99 = 4th = 40 ms; the histogram is within 2^-8.
  EXPECT_NEAR(s.tbt_s.p50, 0.020, 0.020 / 256);
  EXPECT_NEAR(s.tbt_s.p90, 0.040, 0.040 / 256);
  EXPECT_NEAR(s.tbt_s.p99, 0.040, 0.040 / 256);
  EXPECT_EQ(s.tbt_s.count, 4);  // so outputs show these, not "no values"
}

TEST(MetricsSummary, CountsOfferedRejectedTruncatedAndKvCalls) {
  Metrics m;
  for (int i = 0; i < 5; ++i) m.CountOffered();
  m.CountRejected();
  m.CountTruncated();
  m.CountTruncated();
  m.RecordKvCalls(64, 0, Nanos(1'500'000), Nanos(0));
  m.RecordKvCalls(128, 32, Nanos(500'000), Nanos(2'000'000));
  const Summary s = m.Summarize();
  EXPECT_EQ(s.requests_total, 5);
  EXPECT_EQ(s.requests_rejected, 1);
  EXPECT_EQ(s.requests_truncated, 2);
  EXPECT_EQ(s.map_calls, 192);
  EXPECT_EQ(s.unmap_calls, 32);
  EXPECT_DOUBLE_EQ(s.exposed_overhead_s, 0.002);
  EXPECT_DOUBLE_EQ(s.hidden_overhead_s, 0.002);
}

TEST(MetricsSummary, EmptyRunSummarizesToZeros) {
  const Summary s = Metrics().Summarize();
  EXPECT_EQ(s.requests_completed, 0);
  EXPECT_EQ(s.makespan_s, 0);
  EXPECT_EQ(s.requests_per_s, 0);
  EXPECT_EQ(s.output_tokens_per_s, 0);
  EXPECT_EQ(s.ttft_s.p50, 0);
  EXPECT_EQ(s.ttft_s.mean, 0);
  EXPECT_EQ(s.tpot_s.p99, 0);
  EXPECT_EQ(s.tbt_s.p50, 0);
  // No values: outputs show the statistics as missing (null, "n/a"), never as 0.
  for (const Percentiles* p : {&s.ttft_s, &s.tbt_s, &s.tpot_s, &s.e2e_s, &s.queue_s}) {
    EXPECT_EQ(p->count, 0);
    EXPECT_TRUE(std::isnan(p->OrNaN(&Percentiles::p99)));
  }
  EXPECT_EQ(s.mean_allocated_bytes, 0);
  EXPECT_EQ(s.fragmentation, 0);
  EXPECT_EQ(s.iterations, 0);
}

TEST(NearestRank, PicksTheCeilingOfQTimesNthValue) {
  const std::vector<double> v = {1, 2, 3, 4, 5};
  EXPECT_EQ(NearestRank(v, 0.0), 1);   // rank clamped up to 1
  EXPECT_EQ(NearestRank(v, 0.2), 1);   // ceil(1.0) = 1
  EXPECT_EQ(NearestRank(v, 0.21), 2);  // ceil(1.05) = 2
  EXPECT_EQ(NearestRank(v, 0.5), 3);   // ceil(2.5) = 3
  EXPECT_EQ(NearestRank(v, 0.8), 4);   // ceil(4.0) = 4
  EXPECT_EQ(NearestRank(v, 0.81), 5);  // ceil(4.05) = 5
  EXPECT_EQ(NearestRank(v, 1.0), 5);
}

TEST(NearestRank, OfOneValueIsThatValue) {
  EXPECT_EQ(NearestRank({42}, 0.0), 42);
  EXPECT_EQ(NearestRank({42}, 0.99), 42);
}

TEST(NearestRank, OfHundredValuesP99IsThe99th) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(NearestRank(v, 0.99), 99);
  EXPECT_EQ(NearestRank(v, 0.9), 90);
  EXPECT_EQ(NearestRank(v, 0.5), 50);
}

TEST(NearestRank, RejectsAnEmptySample) { EXPECT_THROW(NearestRank({}, 0.5), InvariantError); }

}  // namespace
}  // namespace kvsim
