// Metrics: per-request records, per-iteration samples and the run summary.
// Depends only on core/ and workload/.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/time.h"
#include "sim/metrics/histogram.h"

namespace kvsim {

// One finished request. Times are since simulation start.
struct RequestRecord {
  int64_t id = 0;
  int64_t replica = 0;
  Nanos arrival{0};
  Nanos first_scheduled{0};
  Nanos first_token{0};
  Nanos finish{0};
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  int64_t preemptions = 0;
  // Prefix caching: prompt tokens whose KV was found cached at the request's first
  // admission (not computed), and tokens computed again after preemptions (computed
  // before, neither kept nor found again).
  int64_t prefix_hit_tokens = 0;
  int64_t recomputed_tokens = 0;
};

// One iteration of one replica. KV bytes are per GPU, after scheduling.
struct IterationSample {
  Nanos start{0};
  Nanos duration{0};  // compute + exposed KV overhead
  int64_t replica = 0;
  int64_t running = 0;  // sequences in the batch
  int64_t waiting = 0;  // sequences queued at the replica after scheduling
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t allocated_bytes = 0;
  int64_t live_bytes = 0;
  int64_t cached_bytes = 0;   // held for no request (vAttention deferred reclamation)
  Nanos exposed_overhead{0};  // KV mapping time added to the iteration
};

// A summary of `count` values; with none, every statistic is 0 here, and outputs
// show it as missing (null in JSON, "n/a" in tables), never as a latency of 0.
struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
  int64_t count = 0;

  // `stat` (e.g. &Percentiles::p99), or NaN when there are no values.
  double OrNaN(double Percentiles::*stat) const;
};

// Mean and nearest-rank percentiles of `values` (all zero when empty): what every
// kvsim summary reports, so measured figures computed with it compare like for like.
Percentiles PercentilesOf(std::vector<double> values);

// A stream of non-negative values (seconds) summarised as Percentiles in bounded
// memory: exact (PercentilesOf of every value) while at most `exact_limit` values
// were added; beyond that, percentiles come from a LogHistogram of nanoseconds
// (within 2^-8 relative of a recorded value) and the mean from a running sum.
class Distribution {
 public:
  explicit Distribution(size_t exact_limit) : exact_limit_(exact_limit) {}
  Distribution(const Distribution& other);
  Distribution& operator=(const Distribution& other);
  Distribution(Distribution&&) = default;
  Distribution& operator=(Distribution&&) = default;
  void Add(double seconds);
  int64_t count() const { return count_; }
  bool exact() const { return count_ <= static_cast<int64_t>(exact_limit_); }
  Percentiles Summarize() const;

 private:
  size_t exact_limit_;
  std::vector<double> exact_;                // every value while exact()
  std::unique_ptr<LogHistogram> histogram_;  // every value once not exact()
  double sum_ = 0;
  int64_t count_ = 0;
};

// Queueing delay against arrival time, in a fixed number of time bins (from t = 0)
// that double in width as arrivals go later (bounded memory: 64 KiB), to tell a
// deployment that keeps up with its load from one whose queue grows. Bins start 1 ms
// wide, so a quarter's edge is placed within 1 ms, or within 1/2,048 of the latest
// arrival once the bins have widened.
class QueueGrowth {
 public:
  static constexpr int kBins = 4096;
  static constexpr int64_t kInitialWidthNs = 1'000'000;
  // Arrivals may come in any order (requests are recorded as they finish).
  void Add(Nanos arrival, Nanos queue_delay);
  // Mean queueing delay of the requests that arrived in the first and in the last
  // quarter of the arrival span [earliest, latest] (to the bins' resolution: the bins
  // that overlap the quarter); 0 when none was added.
  double FirstQuarterMeanS() const { return QuarterMean(false); }
  double LastQuarterMeanS() const { return QuarterMean(true); }

 private:
  double QuarterMean(bool last) const;
  int64_t width_ns_ = kInitialWidthNs;  // bin width, doubling as needed
  int64_t earliest_ns_ = -1;            // earliest arrival seen (-1: none)
  int64_t latest_ns_ = 0;               // latest arrival seen
  std::array<double, kBins> sum_s_ = {};
  std::array<int64_t, kBins> count_ = {};
};

// The replicas' waiting queues taken together: requests queued at a replica and in no
// iteration yet (a preempted request, once started, is not counted again). Followed in
// O(1) time and memory per call, to tell a backlog that drains between bursts from one
// that never drains. Calls come in simulated-time order (the event loop's).
class Backlog {
 public:
  // A request that arrived at `arrival` joins a replica's waiting queue (at or after
  // `arrival`: after the engine's per-request work before scheduling).
  void Join(Nanos arrival);
  // A waiting request enters its first iteration at `now`. REQUIRES: one is waiting.
  void Leave(Nanos now);
  // A request arrives at `now` (whether it joins or is refused): the backlog's age
  // then becomes age_at_last_arrival().
  void Observe(Nanos now);
  // How long the queues had held a request without a break when the latest request
  // arrived: 0 when they were empty then, or no request arrived.
  Nanos age_at_last_arrival() const { return age_; }

 private:
  int64_t waiting_ = 0;
  Nanos last_empty_{0};  // the latest instant seen with no request waiting
  Nanos age_{0};
};

struct Summary {
  std::string kv_manager;
  int64_t requests_total = 0;  // offered by the workload
  int64_t requests_completed = 0;
  int64_t requests_rejected = 0;   // prompt >= max_model_len
  int64_t requests_truncated = 0;  // output shortened to fit max_model_len
  double makespan_s = 0;           // last finish (0 if none)
  double requests_per_s = 0, output_tokens_per_s = 0, total_tokens_per_s = 0;
  Percentiles ttft_s, tbt_s, tpot_s, e2e_s, queue_s;
  int64_t preemptions = 0;
  // Prefix caching (RequestRecord): hit tokens over the completed requests' prompt
  // tokens, completed requests with any hit, and tokens computed again after
  // preemptions.
  int64_t prompt_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  int64_t prefix_hit_requests = 0;
  int64_t recomputed_tokens = 0;
  bool prefix_caching = false;     // the KV manager caches prefixes (set by the simulation)
  int64_t kv_bytes_per_token = 0;  // per GPU
  int64_t kv_capacity_bytes = 0;   // per GPU
  int64_t peak_allocated_bytes = 0;
  double mean_allocated_bytes = 0;  // busy-time weighted, per GPU
  double mean_live_bytes = 0;
  double mean_cached_bytes = 0;  // vAttention pages mapped but needed by no request
  double fragmentation = 0;      // 1 - mean_live / mean_allocated
  int64_t max_running = 0;
  double mean_running = 0;  // busy-time weighted sequences per iteration
  int64_t iterations = 0;
  bool is_vattention = false;
  int64_t page_bytes = 0;
  int64_t map_calls = 0, unmap_calls = 0;
  double exposed_overhead_s = 0, hidden_overhead_s = 0;
  double wall_s = 0;
  int64_t events = 0;
  bool percentiles_exact = true;  // request percentiles exact (else within 2^-8)
  // Load. arrival_span_s: from the first to the last arrival; offered_qps: requests
  // offered per second over it, NaN (null in JSON) when it is 0 s (all requests arrive
  // at once, or one does: a batch, no rate). The mean queueing delay of the requests
  // arriving in the first and in the last quarter of the span (QueueGrowth), and how
  // long the waiting queues had held a request without a break when the last request
  // arrived (Backlog). Overloaded: TestOverload with kOverloadSlackS.
  double arrival_span_s = 0;
  double offered_qps = 0;
  double queue_first_quarter_s = 0, queue_last_quarter_s = 0;
  double backlog_age_s = 0;
  bool overloaded = false;
  // Trace rows left out by the format's rules (failed requests of burstgpt and
  // benchmark_serving traces), as Workload::SkippedRowsNote says it; empty for none.
  std::string skipped_rows;
};

// The growth of the queueing delay that a summary's overload rule lets pass, s.
inline constexpr double kOverloadSlackS = 1.0;

// The overload rule: kvsim's one, behind summary.json's load.overloaded, run's
// OVERLOADED, compare's verdict, sweep's `*` and the plan's stability SLO.
//
// Queueing theory calls a queue overloaded when work arrives faster than it is served
// (utilisation rho = lambda / mu >= 1): its backlog then never drains. A stable queue
// (rho < 1) empties again and again, however bursty its arrivals: its busy periods end
// (Kleinrock, Queueing Systems, Vol. 1, 1975, sec. 5.8: an M/G/1 busy period lasts
// x / (1 - rho) on average, x the mean service time, finite exactly when rho < 1;
// Loynes, "The stability of a queue with non-independent inter-arrival and service
// times", 1962: for stationary ergodic arrivals, bursty ones included, the wait
// settles to a finite stationary law, the queue emptying again and again, exactly when
// rho < 1). Past capacity, the n-th request starts about n / mu after the first and
// arrives n / lambda after it: it waits n (1 / mu - 1 / lambda), a wait that grows in
// proportion to its arrival time, whatever queue it began with.
//
// A finite trace shows overload as two things together, and the rule asks for both:
//  - the wait grew: the mean queueing delay of the last quarter of the arrival span
//    exceeds the first quarter's by more than the slack (a difference, not a ratio:
//    an overload whose first quarter already queues grows by as much, and a ratio's
//    bar rises with that first wait, so the heavier the overload the likelier a ratio
//    was to pass it);
//  - the backlog did not drain: the replicas' waiting queues held a request without a
//    break through the last quarter of the arrival span (from before it began up to
//    the last arrival), the quarter whose wait grew: a load that outruns the
//    deployment only late in the trace is overloaded there.
// A bursty load that the deployment keeps up with may wait longer in a late burst,
// but its queue empties between bursts: not overloaded (run says QUEUEING when its
// median request waits over a second). A batch (all requests at once) has no rate
// to fall behind: its span is 0 and its backlog age 0, so it is not overloaded.
struct OverloadTest {
  double growth_s = 0;         // queue_last_quarter_s - queue_first_quarter_s
  double growth_limit_s = 0;   // the slack
  double backlog_age_s = 0;    // Summary::backlog_age_s
  double backlog_limit_s = 0;  // a quarter of Summary::arrival_span_s
  bool overloaded() const { return growth_s > growth_limit_s && backlog_age_s > backlog_limit_s; }
};

// The rule's figures for `s` (its load fields) with `slack_s` (>= 0) of growth let pass.
OverloadTest TestOverload(const Summary& s, double slack_s = kOverloadSlackS);

// What the run knows about itself that the metrics do not see: the scenario's facts
// and the event loop's own counts. Summarize copies them into the Summary.
struct RunFacts {
  std::string kv_manager;          // its label ("paged", "vattention", "static")
  bool prefix_caching = false;     // the KV manager caches prefixes
  int64_t kv_bytes_per_token = 0;  // per GPU
  int64_t kv_capacity_bytes = 0;   // per GPU
  bool is_vattention = false;
  int64_t page_bytes = 0;    // vAttention's page size; 0 for other managers
  std::string skipped_rows;  // Workload::SkippedRowsNote
  int64_t events = 0;        // events the loop handled
  double wall_s = 0;         // wall time of the run
};

// Receives every finished request and every iteration as the simulation produces
// them (e.g. to stream them to disk). Iterations arrive in start-time order, those
// starting at the same time by replica index (Metrics::OrderIterations makes that
// hold across replicas), so the stream is the same whichever way the run advanced.
class MetricsObserver {
 public:
  virtual ~MetricsObserver() = default;
  virtual void OnRequest(const RequestRecord& record) = 0;
  virtual void OnIteration(const IterationSample& sample) = 0;
  // Asked once, when added: false spares the per-iteration calls.
  virtual bool WantsIterations() const { return true; }
};

struct MetricsOptions {
  // Retain every RequestRecord (records()): for checks that need them all, e.g. the
  // planner's SLO attainment. Memory then grows with the trace.
  bool keep_records = false;
  // Request-level percentiles (TTFT, TPOT, E2E, queueing) are exact up to this many
  // completed requests, then within 2^-8 (Distribution); 8 bytes each per metric.
  size_t exact_percentile_limit = size_t{1} << 17;
};

class Metrics {
 public:
  explicit Metrics(MetricsOptions options = {});

  // Observers see each record as it is added; not owned, must outlive the run.
  void AddObserver(MetricsObserver* observer) {
    observers_.push_back(observer);
    if (observer->WantsIterations()) iteration_observers_.push_back(observer);
  }
  void KeepRecords() { options_.keep_records = true; }

  // Several replicas record their iterations out of start-time order (a skip-ahead
  // run records a whole run of iterations when it starts it). After this call,
  // iterations reach the observers in (start, replica) order: each is held until
  // AdvanceClock passes its start, the rest are handed over by FlushIterations. The
  // caller promises that no iteration recorded after AdvanceClock(now) starts before
  // now. Totals are order-independent and are counted at once either way.
  void OrderIterations() { order_iterations_ = true; }
  // The simulation clock reached `now`: hands over the held iterations that start
  // before it.
  void AdvanceClock(Nanos now) {
    if (!held_.empty() && held_.front().start < now) ReleaseBefore(now);
  }
  // Hands over every held iteration (the run is over).
  void FlushIterations() { ReleaseBefore(Nanos::max()); }

  void RecordToken(Nanos gap_since_previous_token) { tbt_.Add(gap_since_previous_token.count()); }
  // `count` tokens, each `gap_since_previous_token` after its sequence's previous one.
  void RecordTokens(Nanos gap_since_previous_token, int64_t count) {
    tbt_.Add(gap_since_previous_token.count(), count);
  }
  void RecordRequest(const RequestRecord& record);
  void RecordIteration(const IterationSample& sample);
  void RecordKvCalls(int64_t map_calls, int64_t unmap_calls, Nanos exposed, Nanos hidden);
  // A request offered to the system at `arrival`, in arrival order (the event loop's).
  void CountOffered(Nanos arrival = Nanos(0)) {
    ++offered_;
    if (first_arrival_ < Nanos(0)) first_arrival_ = arrival;
    last_arrival_ = std::max(last_arrival_, arrival);
    backlog_.Observe(arrival);
  }
  // The waiting queues (Backlog), in simulated-time order: a request that arrived at
  // `arrival` is queued at a replica; a queued request starts its first iteration at
  // `now`.
  void CountQueued(Nanos arrival) { backlog_.Join(arrival); }
  void CountStarted(Nanos now) { backlog_.Leave(now); }
  void CountRejected() { ++rejected_; }
  void CountTruncated() { ++truncated_; }

  // Every finished request in completion order; empty unless keep_records.
  const std::vector<RequestRecord>& records() const { return records_; }
  // Hands the kept records over (records() is empty after).
  std::vector<RequestRecord> TakeRecords() { return std::exchange(records_, {}); }

  // Computes the summary: request percentiles from the Distributions (exact up to
  // exact_percentile_limit requests), TBT percentiles from the histogram, and
  // `facts` as they are. The one place a Summary is assembled.
  Summary Summarize(const RunFacts& facts = {}) const;

 private:
  MetricsOptions options_;
  // Hands the held iterations that start before `before` to the observers, in
  // (start, replica) order.
  void ReleaseBefore(Nanos before);

  std::vector<MetricsObserver*> observers_, iteration_observers_;
  bool order_iterations_ = false;
  std::vector<IterationSample> held_;  // a min-heap by (start, replica); front() first
  std::vector<RequestRecord> records_;
  Distribution ttft_, tpot_, e2e_, queue_;
  QueueGrowth queue_growth_;
  Backlog backlog_;
  Nanos first_arrival_{-1}, last_arrival_{-1};
  LogHistogram tbt_;
  int64_t completed_ = 0;
  Nanos last_finish_{0};
  int64_t output_tokens_ = 0, prompt_tokens_ = 0, preemptions_ = 0;
  int64_t prefix_hit_tokens_ = 0, prefix_hit_requests_ = 0, recomputed_tokens_ = 0;
  int64_t offered_ = 0, rejected_ = 0, truncated_ = 0;
  int64_t iterations_ = 0;
  int64_t peak_allocated_ = 0;
  int64_t max_running_ = 0;
  // Integrals over busy time, in integers so that they do not depend on the order
  // in which replicas' iterations are recorded.
  __extension__ typedef __int128 Int128;
  int64_t busy_ns_ = 0;
  Int128 allocated_ns_ = 0, live_ns_ = 0, cached_ns_ = 0, running_ns_ = 0;
  int64_t map_calls_ = 0, unmap_calls_ = 0;
  Nanos exposed_{0}, hidden_{0};
};

// Nearest-rank percentile of sorted values. REQUIRES: sorted ascending, non-empty.
double NearestRank(const std::vector<double>& sorted, double q);
// The 0-based index of the q-quantile's nearest rank among n values. REQUIRES: n > 0.
int64_t NearestRankIndex(int64_t n, double q);

}  // namespace kvsim
