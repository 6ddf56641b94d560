// Metrics aggregation.
#include "sim/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// The heap order of Metrics' held iterations: `a` after `b` in (start, replica)
// order, so that the heap's front is the earliest.
bool LaterIteration(const IterationSample& a, const IterationSample& b) {
  return a.start != b.start ? a.start > b.start : a.replica > b.replica;
}

}  // namespace

double Percentiles::OrNaN(double Percentiles::*stat) const {
  return count > 0 ? this->*stat : std::numeric_limits<double>::quiet_NaN();
}

Percentiles PercentilesOf(std::vector<double> values) {
  Percentiles p;
  if (values.empty()) return p;
  p.count = static_cast<int64_t>(values.size());
  double sum = 0;
  for (double v : values) sum += v;
  p.mean = sum / static_cast<double>(values.size());
  // Each nearest rank by selection, highest first: the ranks below stay in front.
  const auto n = static_cast<int64_t>(values.size());
  const auto select = [&](double q, size_t end) {
    const size_t k = static_cast<size_t>(NearestRankIndex(n, q));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k),
                     values.begin() + static_cast<std::ptrdiff_t>(end));
    return k;
  };
  const size_t k99 = select(0.99, values.size());
  p.p99 = values[k99];
  const size_t k90 = select(0.90, k99 + 1);
  p.p90 = values[k90];
  p.p50 = values[select(0.50, k90 + 1)];
  return p;
}

int64_t NearestRankIndex(int64_t n, double q) {
  KVSIM_CHECK(n > 0, "percentile of nothing");
  // The epsilon keeps q * n that should be whole (0.07 * 100 = 7.000000000000001)
  // from rounding up to the next rank.
  const auto rank =
      std::clamp<int64_t>(static_cast<int64_t>(std::ceil(q * static_cast<double>(n) - 1e-9)), 1, n);
  return rank - 1;
}

double NearestRank(const std::vector<double>& sorted, double q) {
  KVSIM_CHECK(!sorted.empty(), "percentile of nothing");
  return sorted[static_cast<size_t>(NearestRankIndex(static_cast<int64_t>(sorted.size()), q))];
}

Distribution::Distribution(const Distribution& other)
    : exact_limit_(other.exact_limit_),
      exact_(other.exact_),
      histogram_(other.histogram_ ? std::make_unique<LogHistogram>(*other.histogram_) : nullptr),
      sum_(other.sum_),
      count_(other.count_) {}

Distribution& Distribution::operator=(const Distribution& other) {
  if (this != &other) *this = Distribution(other);
  return *this;
}

void Distribution::Add(double seconds) {
  ++count_;
  sum_ += seconds;
  if (exact()) {
    exact_.push_back(seconds);
    return;
  }
  if (!histogram_) {  // the limit was just passed: move what was kept
    histogram_ = std::make_unique<LogHistogram>();
    for (double v : exact_) histogram_->Add(SecondsToNanos(v).count());
    exact_.clear();
    exact_.shrink_to_fit();
  }
  histogram_->Add(SecondsToNanos(seconds).count());
}

Percentiles Distribution::Summarize() const {
  if (exact()) return PercentilesOf(exact_);
  return {sum_ / static_cast<double>(count_), histogram_->Quantile(0.50) * 1e-9,
          histogram_->Quantile(0.90) * 1e-9, histogram_->Quantile(0.99) * 1e-9, count_};
}

void QueueGrowth::Add(Nanos arrival, Nanos queue_delay) {
  const int64_t t = std::max<int64_t>(0, arrival.count());
  while (t / width_ns_ >= kBins) {  // merge neighbouring bins: twice as wide
    for (size_t i = 0; i < static_cast<size_t>(kBins) / 2; ++i) {
      sum_s_[i] = sum_s_[2 * i] + sum_s_[2 * i + 1];
      count_[i] = count_[2 * i] + count_[2 * i + 1];
    }
    std::fill(sum_s_.begin() + kBins / 2, sum_s_.end(), 0.0);
    std::fill(count_.begin() + kBins / 2, count_.end(), 0);
    width_ns_ *= 2;
  }
  const auto b = static_cast<size_t>(t / width_ns_);
  sum_s_[b] += ToSeconds(queue_delay);
  ++count_[b];
  earliest_ns_ = earliest_ns_ < 0 ? t : std::min(earliest_ns_, t);
  latest_ns_ = std::max(latest_ns_, t);
}

double QueueGrowth::QuarterMean(bool last) const {
  if (earliest_ns_ < 0) return 0;
  const int64_t quarter = (latest_ns_ - earliest_ns_) / 4;
  // The quarter [from, to]; a bin counts when it overlaps it.
  const int64_t from = last ? latest_ns_ - quarter : earliest_ns_;
  const int64_t to = last ? latest_ns_ : earliest_ns_ + quarter;
  double sum = 0;
  int64_t n = 0;
  for (int64_t b = from / width_ns_; b <= to / width_ns_; ++b) {
    sum += sum_s_[static_cast<size_t>(b)];
    n += count_[static_cast<size_t>(b)];
  }
  return n > 0 ? sum / static_cast<double>(n) : 0;
}

void Backlog::Join(Nanos arrival) {
  // Empty until now, so empty at `arrival` too, unless it emptied later (the request
  // was on its way to the replica then).
  if (waiting_ == 0) last_empty_ = std::max(last_empty_, arrival);
  ++waiting_;
}

void Backlog::Leave(Nanos now) {
  KVSIM_CHECK(waiting_ > 0, "a request started that was never queued");
  if (--waiting_ == 0) last_empty_ = std::max(last_empty_, now);
}

void Backlog::Observe(Nanos now) {
  age_ = waiting_ > 0 ? std::max(Nanos(0), now - last_empty_) : Nanos(0);
}

OverloadTest TestOverload(const Summary& s, double slack_s) {
  return {.growth_s = s.queue_last_quarter_s - s.queue_first_quarter_s,
          .growth_limit_s = slack_s,
          .backlog_age_s = s.backlog_age_s,
          .backlog_limit_s = s.arrival_span_s / 4};
}

Metrics::Metrics(MetricsOptions options)
    : options_(options),
      ttft_(options.exact_percentile_limit),
      tpot_(options.exact_percentile_limit),
      e2e_(options.exact_percentile_limit),
      queue_(options.exact_percentile_limit) {}

void Metrics::RecordRequest(const RequestRecord& r) {
  ++completed_;
  last_finish_ = std::max(last_finish_, r.finish);
  output_tokens_ += r.output_tokens;
  prompt_tokens_ += r.prompt_tokens;
  preemptions_ += r.preemptions;
  prefix_hit_tokens_ += r.prefix_hit_tokens;
  prefix_hit_requests_ += r.prefix_hit_tokens > 0 ? 1 : 0;
  recomputed_tokens_ += r.recomputed_tokens;
  ttft_.Add(ToSeconds(r.first_token - r.arrival));
  e2e_.Add(ToSeconds(r.finish - r.arrival));
  queue_.Add(ToSeconds(r.first_scheduled - r.arrival));
  queue_growth_.Add(r.arrival, r.first_scheduled - r.arrival);
  if (r.output_tokens > 1) {
    tpot_.Add(ToSeconds(r.finish - r.first_token) / static_cast<double>(r.output_tokens - 1));
  }
  if (options_.keep_records) records_.push_back(r);
  for (MetricsObserver* o : observers_) o->OnRequest(r);
}

void Metrics::RecordIteration(const IterationSample& s) {
  ++iterations_;
  const int64_t d = s.duration.count();
  busy_ns_ += d;
  allocated_ns_ += static_cast<Int128>(d) * s.allocated_bytes;
  live_ns_ += static_cast<Int128>(d) * s.live_bytes;
  cached_ns_ += static_cast<Int128>(d) * s.cached_bytes;
  running_ns_ += static_cast<Int128>(d) * s.running;
  peak_allocated_ = std::max(peak_allocated_, s.allocated_bytes);
  max_running_ = std::max(max_running_, s.running);
  if (iteration_observers_.empty()) return;
  if (!order_iterations_) {
    for (MetricsObserver* o : iteration_observers_) o->OnIteration(s);
    return;
  }
  held_.push_back(s);
  std::push_heap(held_.begin(), held_.end(), LaterIteration);
}

void Metrics::ReleaseBefore(Nanos before) {
  while (!held_.empty() && held_.front().start < before) {
    std::pop_heap(held_.begin(), held_.end(), LaterIteration);
    for (MetricsObserver* o : iteration_observers_) o->OnIteration(held_.back());
    held_.pop_back();
  }
}

void Metrics::RecordKvCalls(int64_t map_calls, int64_t unmap_calls, Nanos exposed, Nanos hidden) {
  map_calls_ += map_calls;
  unmap_calls_ += unmap_calls;
  exposed_ += exposed;
  hidden_ += hidden;
}

Summary Metrics::Summarize(const RunFacts& facts) const {
  Summary s;
  s.kv_manager = facts.kv_manager;
  s.prefix_caching = facts.prefix_caching;
  s.kv_bytes_per_token = facts.kv_bytes_per_token;
  s.kv_capacity_bytes = facts.kv_capacity_bytes;
  s.is_vattention = facts.is_vattention;
  s.page_bytes = facts.page_bytes;
  s.skipped_rows = facts.skipped_rows;
  s.events = facts.events;
  s.wall_s = facts.wall_s;
  s.requests_total = offered_;
  s.requests_completed = completed_;
  s.requests_rejected = rejected_;
  s.requests_truncated = truncated_;
  s.makespan_s = ToSeconds(last_finish_);
  if (s.makespan_s > 0) {
    s.requests_per_s = static_cast<double>(s.requests_completed) / s.makespan_s;
    s.output_tokens_per_s = static_cast<double>(output_tokens_) / s.makespan_s;
    s.total_tokens_per_s = static_cast<double>(output_tokens_ + prompt_tokens_) / s.makespan_s;
  }
  s.ttft_s = ttft_.Summarize();
  s.tpot_s = tpot_.Summarize();
  s.e2e_s = e2e_.Summarize();
  s.queue_s = queue_.Summarize();
  s.percentiles_exact = ttft_.exact() && tpot_.exact() && e2e_.exact() && queue_.exact();
  // offered_ - 1 gaps over the span; none when it is 0 s (a batch, or no request).
  s.arrival_span_s = offered_ > 0 ? ToSeconds(last_arrival_ - first_arrival_) : 0;
  s.offered_qps = s.arrival_span_s > 0 ? static_cast<double>(offered_ - 1) / s.arrival_span_s
                                       : std::numeric_limits<double>::quiet_NaN();
  s.queue_first_quarter_s = queue_growth_.FirstQuarterMeanS();
  s.queue_last_quarter_s = queue_growth_.LastQuarterMeanS();
  s.backlog_age_s = ToSeconds(backlog_.age_at_last_arrival());
  s.overloaded = TestOverload(s).overloaded();
  s.tbt_s = {tbt_.mean() * 1e-9, tbt_.Quantile(0.5) * 1e-9, tbt_.Quantile(0.9) * 1e-9,
             tbt_.Quantile(0.99) * 1e-9, tbt_.count()};
  s.preemptions = preemptions_;
  s.prompt_tokens = prompt_tokens_;
  s.prefix_hit_tokens = prefix_hit_tokens_;
  s.prefix_hit_requests = prefix_hit_requests_;
  s.recomputed_tokens = recomputed_tokens_;
  s.peak_allocated_bytes = peak_allocated_;
  if (busy_ns_ > 0) {
    const auto busy = static_cast<double>(busy_ns_);
    s.mean_allocated_bytes = static_cast<double>(allocated_ns_) / busy;
    s.mean_live_bytes = static_cast<double>(live_ns_) / busy;
    s.mean_cached_bytes = static_cast<double>(cached_ns_) / busy;
    s.mean_running = static_cast<double>(running_ns_) / busy;
  }
  s.fragmentation =
      s.mean_allocated_bytes > 0 ? 1.0 - s.mean_live_bytes / s.mean_allocated_bytes : 0;
  s.max_running = max_running_;
  s.iterations = iterations_;
  s.map_calls = map_calls_;
  s.unmap_calls = unmap_calls_;
  s.exposed_overhead_s = ToSeconds(exposed_);
  s.hidden_overhead_s = ToSeconds(hidden_);
  return s;
}

}  // namespace kvsim
