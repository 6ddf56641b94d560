// Workload: merges an arrival process (trace timestamps, Poisson or Gamma) with a length
// source (trace rows, fixed, uniform or resampled) into a stream of RequestSpecs.
#include "sim/workload/workload.h"

#include <fmt/format.h>

#include <cmath>

#include "sim/core/check.h"
#include "sim/core/time.h"

namespace kvsim {

const char* ArrivalProcessName(ArrivalProcess process) {
  switch (process) {
    case ArrivalProcess::kTrace:
      return "trace";
    case ArrivalProcess::kPoisson:
      return "poisson";
    case ArrivalProcess::kGamma:
      return "gamma";
  }
  return "?";
}

namespace {

const char* LengthSourceName(LengthSource s) {
  switch (s) {
    case LengthSource::kTrace:
      return "trace";
    case LengthSource::kFixed:
      return "fixed";
    case LengthSource::kUniform:
      return "uniform";
    case LengthSource::kResample:
      return "resample";
  }
  return "unknown";
}

// "prefix.key", or "key" when the prefix is empty.
std::string Key(const std::string& prefix, const char* key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

[[noreturn]] void FailKey(const std::string& prefix, const char* key, const std::string& what) {
  throw InputError(fmt::format("{}: {}", Key(prefix, key), what));
}

void CheckTokenRange(const std::string& prefix, const char* min_key, const char* max_key,
                     int64_t lo, int64_t hi) {
  if (lo < 1) FailKey(prefix, min_key, fmt::format("must be >= 1, got {}", lo));
  if (hi < lo) {
    FailKey(prefix, max_key,
            fmt::format("must be >= {} ({}), got {}", Key(prefix, min_key), lo, hi));
  }
}

// The key prefix used for errors found while constructing a Workload.
constexpr const char* kWorkloadPrefix = "workload";

}  // namespace

void ValidateWorkloadConfig(const WorkloadConfig& c, const std::string& p) {
  switch (c.arrival) {
    case ArrivalProcess::kTrace:
      if (c.trace_path.empty()) FailKey(p, "trace", "a trace path is required for trace arrivals");
      if (!std::isfinite(c.rate_qps) || c.rate_qps < 0) {
        FailKey(
            p, "arrival.rate_qps",
            fmt::format("must be >= 0 for trace arrivals (0 = as recorded), got {}", c.rate_qps));
      }
      if (c.trace_format == TraceFormat::kLengths) {
        FailKey(p, "arrival.process",
                "'trace' arrivals need a trace with timestamps, but the trace format is 'lengths'; "
                "use poisson or gamma arrivals");
      }
      if (c.trace_format == TraceFormat::kCsv && c.columns.arrival.empty()) {
        FailKey(p, "arrival.process",
                fmt::format("'trace' arrivals need a trace with timestamps, but {} names no "
                            "arrival column; name it, or use poisson or gamma arrivals",
                            Key(p, "columns")));
      }
      break;
    case ArrivalProcess::kPoisson:
    case ArrivalProcess::kGamma:
      if (!std::isfinite(c.rate_qps) || c.rate_qps <= 0) {
        FailKey(p, "arrival.rate_qps",
                fmt::format("must be > 0 for {} arrivals, got {}", ArrivalProcessName(c.arrival),
                            c.rate_qps));
      }
      if (c.arrival == ArrivalProcess::kGamma && (!std::isfinite(c.cv) || c.cv <= 0)) {
        FailKey(p, "arrival.cv", fmt::format("must be > 0 for gamma arrivals, got {}", c.cv));
      }
      break;
  }
  switch (c.lengths) {
    case LengthSource::kTrace:
    case LengthSource::kResample:
      if (c.trace_path.empty()) {
        FailKey(
            p, "trace",
            fmt::format("a trace path is required for '{}' lengths", LengthSourceName(c.lengths)));
      }
      break;
    case LengthSource::kFixed:
      if (c.fixed_prompt_tokens < 1) {
        FailKey(p, "lengths.prompt_tokens",
                fmt::format("must be >= 1 for fixed lengths, got {}", c.fixed_prompt_tokens));
      }
      if (c.fixed_output_tokens < 1) {
        FailKey(p, "lengths.output_tokens",
                fmt::format("must be >= 1 for fixed lengths, got {}", c.fixed_output_tokens));
      }
      break;
    case LengthSource::kUniform:
      CheckTokenRange(p, "lengths.min_prompt_tokens", "lengths.max_prompt_tokens",
                      c.min_prompt_tokens, c.max_prompt_tokens);
      CheckTokenRange(p, "lengths.min_output_tokens", "lengths.max_output_tokens",
                      c.min_output_tokens, c.max_output_tokens);
      break;
  }
  if (c.trace_format == TraceFormat::kCsv &&
      (c.columns.prompt_tokens.empty() || c.columns.output_tokens.empty())) {
    FailKey(p, "columns",
            "format csv needs the header names of its columns: {prompt_tokens: NAME, "
            "output_tokens: NAME} and optionally arrival: NAME, arrival_unit: s|ms|us|timestamp");
  }
  if (c.max_requests < 0) {
    FailKey(p, "max_requests",
            fmt::format("must be >= 0 (0 = whole trace), got {}", c.max_requests));
  }
  if (c.lengths != LengthSource::kTrace && c.max_requests == 0) {
    FailKey(p, "max_requests",
            fmt::format("must be > 0 with '{}' lengths (only trace lengths end the workload by "
                        "themselves)",
                        LengthSourceName(c.lengths)));
  }
}

class Workload::Impl {
 public:
  explicit Impl(const WorkloadConfig& config)
      : config_(config),
        arrival_rng_(config.seed, RngStream::kArrivals),
        length_rng_(config.seed, RngStream::kLengths) {
    ValidateWorkloadConfig(config_, kWorkloadPrefix);
    const bool trace_arrivals = config_.arrival == ArrivalProcess::kTrace;
    const bool trace_lengths = config_.lengths == LengthSource::kTrace;
    if (trace_arrivals || trace_lengths) {
      reader_ = OpenTrace(config_.trace_path, config_.trace_format, config_.columns);
      if (trace_arrivals && !reader_->has_arrivals()) {
        FailKey(kWorkloadPrefix, "arrival.process",
                fmt::format("'trace' arrivals need a trace with timestamps, but '{}' is a "
                            "length-only ({}) trace; use poisson or gamma arrivals",
                            config_.trace_path, TraceFormatName(reader_->format())));
      }
    }
    if (trace_arrivals && config_.rate_qps > 0) time_scale_ = MeasureTimeScale();
    if (config_.lengths == LengthSource::kResample) LoadLengthPool();
  }

  std::string SkippedRowsNote() const {
    const int64_t rows = reader_ ? reader_->skipped_rows() : pool_skipped_rows_;
    if (rows == 0) return "";
    return fmt::format("{}: {} row{} skipped: {}", config_.trace_path, rows, rows == 1 ? "" : "s",
                       reader_ ? reader_->skipped_rows_reason() : pool_skipped_reason_);
  }

  std::optional<RequestSpec> Next() {
    if (config_.max_requests > 0 && next_id_ >= config_.max_requests) return std::nullopt;
    std::optional<TraceRecord> row;
    if (reader_) {
      row = reader_->Next();
      if (!row) return std::nullopt;
      CheckTraceTokens(*row, config_.trace_path);
    }
    RequestSpec spec;
    spec.id = next_id_++;
    spec.arrival = NextArrival(row ? &*row : nullptr);
    switch (config_.lengths) {
      case LengthSource::kTrace:
        spec.prompt_tokens = row->prompt_tokens;
        spec.output_tokens = row->output_tokens;
        spec.hash_ids = std::move(row->hash_ids);
        break;
      case LengthSource::kFixed:
        spec.prompt_tokens = config_.fixed_prompt_tokens;
        spec.output_tokens = config_.fixed_output_tokens;
        break;
      case LengthSource::kUniform:
        spec.prompt_tokens =
            length_rng_.UniformInt(config_.min_prompt_tokens, config_.max_prompt_tokens);
        spec.output_tokens =
            length_rng_.UniformInt(config_.min_output_tokens, config_.max_output_tokens);
        break;
      case LengthSource::kResample: {
        const auto& drawn =
            pool_[length_rng_.UniformInt(0, static_cast<int64_t>(pool_.size()) - 1)];
        spec.prompt_tokens = drawn.first;
        spec.output_tokens = drawn.second;
        break;
      }
    }
    return spec;
  }

 private:
  // Arrival of the next request. `row` is the current trace row, or null without a trace.
  Nanos NextArrival(const TraceRecord* row) {
    switch (config_.arrival) {
      case ArrivalProcess::kTrace: {
        KVSIM_CHECK(row && row->arrival_s, "trace arrivals need a timestamped trace row");
        if (!have_first_arrival_) {
          have_first_arrival_ = true;
          first_arrival_s_ = *row->arrival_s;
        }
        const double s = (*row->arrival_s - first_arrival_s_) * time_scale_;
        if (!(s <= kMaxSimulatedSeconds)) {
          throw InputError(fmt::format(
              "{}:{}: arrival {:g} s after the first used row{} is past the {:g} s kvsim "
              "simulates",
              config_.trace_path, row->line, s, time_scale_ != 1.0 ? " (time-scaled)" : "",
              kMaxSimulatedSeconds));
        }
        return SecondsToNanos(s);
      }
      case ArrivalProcess::kPoisson:
        clock_s_ += arrival_rng_.Exponential(1.0 / config_.rate_qps);
        break;
      case ArrivalProcess::kGamma: {
        const double cv2 = config_.cv * config_.cv;
        clock_s_ += arrival_rng_.Gamma(1.0 / cv2, cv2 / config_.rate_qps);
        break;
      }
    }
    if (!(clock_s_ <= kMaxSimulatedSeconds)) {
      FailKey(kWorkloadPrefix, "arrival.rate_qps",
              fmt::format("request {} would arrive at {:g} s at {:g} req/s, past the {:g} s kvsim "
                          "simulates; raise the rate or lower max_requests",
                          next_id_, clock_s_, config_.rate_qps, kMaxSimulatedSeconds));
    }
    return SecondsToNanos(clock_s_);
  }

  // Reads the arrival column of the rows that will be used (up to max_requests) and
  // returns the factor that maps recorded seconds to seconds at rate_qps.
  double MeasureTimeScale() const {
    std::unique_ptr<TraceReader> ahead =
        OpenTrace(config_.trace_path, reader_->format(), config_.columns);
    int64_t n = 0;
    double first = 0, last = 0;
    while (config_.max_requests == 0 || n < config_.max_requests) {
      std::optional<TraceRecord> r = ahead->Next();
      if (!r) break;
      if (n == 0) first = *r->arrival_s;
      last = *r->arrival_s;
      ++n;
    }
    const double span = last - first;
    if (n < 2 || !(span > 0)) {
      FailKey(kWorkloadPrefix, "arrival.rate_qps",
              fmt::format("cannot scale trace '{}' to {} req/s: its {} used row(s) span {} s, so "
                          "it has no recorded rate",
                          config_.trace_path, config_.rate_qps, n, span));
    }
    const double recorded_rate = static_cast<double>(n - 1) / span;
    return recorded_rate / config_.rate_qps;
  }

  // Reads every row's (prompt, output) pair for resampling.
  void LoadLengthPool() {
    std::unique_ptr<TraceReader> all =
        OpenTrace(config_.trace_path, config_.trace_format, config_.columns);
    while (std::optional<TraceRecord> r = all->Next()) {
      CheckTraceTokens(*r, config_.trace_path);
      pool_.emplace_back(r->prompt_tokens, r->output_tokens);
    }
    pool_skipped_rows_ = all->skipped_rows();
    pool_skipped_reason_ = all->skipped_rows_reason();
    if (pool_.empty()) {
      FailKey(kWorkloadPrefix, "trace",
              fmt::format("trace '{}' has no rows to resample lengths from", config_.trace_path));
    }
  }

  WorkloadConfig config_;
  Rng arrival_rng_;
  Rng length_rng_;
  std::unique_ptr<TraceReader> reader_;  // set for trace arrivals or trace lengths
  double time_scale_ = 1.0;              // recorded seconds -> simulated seconds
  bool have_first_arrival_ = false;
  double first_arrival_s_ = 0;                     // recorded arrival of the first used row, s
  double clock_s_ = 0;                             // synthetic arrival clock, s
  std::vector<std::pair<int64_t, int64_t>> pool_;  // (prompt, output) rows for resampling
  int64_t pool_skipped_rows_ = 0;                  // rows the pool's reader skipped
  std::string pool_skipped_reason_;
  int64_t next_id_ = 0;
};

Workload::Workload(const WorkloadConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Workload::~Workload() = default;

std::optional<RequestSpec> Workload::Next() { return impl_->Next(); }

std::string Workload::SkippedRowsNote() const { return impl_->SkippedRowsNote(); }

}  // namespace kvsim
