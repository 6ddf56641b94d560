// Workload: merges an arrival process (trace timestamps, Poisson or Gamma) with a length
// source (trace rows, fixed, uniform or resampled) into a stream of RequestSpecs, and
// adds synthetic prefix sharing: shared system prompts and multi-turn sessions.
#include "sim/workload/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>

#include "sim/core/check.h"
#include "sim/core/time.h"

namespace kvsim {

namespace {

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

// What a synthetic content id names.
enum class StreamKind : uint64_t {
  kSharedPrefix = 1,       // a shared system prompt, as a stream
  kSession = 2,            // a multi-turn session
  kSharedPrefixBlock = 3,  // a shared system prompt, as the one hash id of a session's turns
};

// FNV-1a of `text`: a fixed 64-bit tag.
constexpr uint64_t Fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// splitmix64's finaliser: a bijective 64-bit mix.
uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The id of the index-th content stream of `kind`, a hash of ("kvsim-stream", kind,
// index). Distinct (kind, index) pairs give distinct ids in practice; the top bit is
// set, so an id is never 0 and never equals a trace's hash id (Mooncake's are small
// non-negative integers).
uint64_t StreamId(StreamKind kind, int64_t index) {
  constexpr uint64_t kTag = Fnv1a("kvsim-stream");
  const uint64_t h =
      Mix64(Mix64(kTag ^ static_cast<uint64_t>(kind)) ^ static_cast<uint64_t>(index));
  return h | (uint64_t{1} << 63);
}

// Throws for the first bad arrival key (trace path and timestamps, rate_qps, cv).
void ValidateArrival(const WorkloadConfig& c, const std::string& p) {
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
}

// Throws for the first bad lengths key (trace path, fixed or uniform token counts).
void ValidateLengths(const WorkloadConfig& c, const std::string& p) {
  switch (c.lengths) {
    case LengthSource::kTrace:
    case LengthSource::kResample:
      if (c.trace_path.empty()) {
        FailKey(p, "trace",
                fmt::format("a trace path is required for '{}' lengths",
                            kLengthSources.Name(c.lengths)));
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
}

// Throws when a csv trace lacks column names or max_requests is out of range.
void ValidateColumnsAndLimit(const WorkloadConfig& c, const std::string& p) {
  if (c.trace_format == TraceFormat::kCsv &&
      (c.columns.prompt_tokens.empty() || c.columns.output_tokens.empty())) {
    FailKey(p, "columns",
            fmt::format("format csv needs the header names of its columns: {{prompt_tokens: NAME, "
                        "output_tokens: NAME}} and optionally arrival: NAME, arrival_unit: {}",
                        kArrivalUnits.NameList("|")));
  }
  if (c.max_requests < 0) {
    FailKey(p, "max_requests",
            fmt::format("must be >= 0 (0 = whole trace), got {}", c.max_requests));
  }
  if (c.lengths != LengthSource::kTrace && c.max_requests == 0) {
    FailKey(p, "max_requests",
            fmt::format("must be > 0 with '{}' lengths (only trace lengths end the workload by "
                        "themselves)",
                        kLengthSources.Name(c.lengths)));
  }
}

// Throws for the first bad shared_prefix key (tokens, fraction, groups).
void ValidateSharedPrefix(const WorkloadConfig& c, const std::string& p) {
  const SharedPrefixConfig& prefix = c.shared_prefix;
  if (prefix.tokens < 0 || prefix.tokens > kMaxSharedPrefixTokens) {
    FailKey(p, "shared_prefix.tokens",
            fmt::format("must be in [1, {}] (0: no shared prefix), got {}", kMaxSharedPrefixTokens,
                        prefix.tokens));
  }
  if (!(prefix.fraction >= 0 && prefix.fraction <= 1)) {
    FailKey(p, "shared_prefix.fraction",
            fmt::format("must be in [0, 1] (the probability that a request carries a shared "
                        "prefix), got {}",
                        prefix.fraction));
  }
  if (prefix.groups < 1 || prefix.groups > kMaxSharedPrefixGroups) {
    FailKey(p, "shared_prefix.groups",
            fmt::format("must be in [1, {}], got {}", kMaxSharedPrefixGroups, prefix.groups));
  }
  if (prefix.tokens == 0 && (prefix.fraction != 1.0 || prefix.groups != 1)) {
    FailKey(p, "shared_prefix.tokens",
            fmt::format("must be > 0 when {} or {} is set (0 turns shared prefixes off)",
                        Key(p, "shared_prefix.fraction"), Key(p, "shared_prefix.groups")));
  }
}

// Throws for the first bad sessions key (turns, think_time_s).
void ValidateSessions(const WorkloadConfig& c, const std::string& p) {
  const SessionConfig& sessions = c.sessions;
  if (sessions.turns < 0 || sessions.turns > kMaxSessionTurns) {
    FailKey(p, "sessions.turns",
            fmt::format("must be in [1, {}] (0: no sessions), got {}", kMaxSessionTurns,
                        sessions.turns));
  }
  if (!(sessions.think_time_s >= 0 && sessions.think_time_s <= kMaxThinkTimeSeconds)) {
    FailKey(p, "sessions.think_time_s",
            fmt::format("must be in [0, {:g}] seconds, got {}", kMaxThinkTimeSeconds,
                        sessions.think_time_s));
  }
  if (sessions.turns == 0 && sessions.think_time_s != 0) {
    FailKey(p, "sessions.turns",
            fmt::format("must be > 0 when {} is set (0 turns sessions off)",
                        Key(p, "sessions.think_time_s")));
  }
}

}  // namespace

void ValidateWorkloadConfig(const WorkloadConfig& c, const std::string& p) {
  ValidateArrival(c, p);
  ValidateLengths(c, p);
  ValidateColumnsAndLimit(c, p);
  ValidateSharedPrefix(c, p);
  ValidateSessions(c, p);
}

class Workload::Impl {
 public:
  explicit Impl(const WorkloadConfig& config)
      : config_(config),
        arrival_rng_(config.seed, RngStream::kArrivals),
        length_rng_(config.seed, RngStream::kLengths),
        prefix_rng_(config.seed, RngStream::kSharedPrefix) {
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
    think_time_ = SecondsToNanos(config_.sessions.think_time_s);
  }

  std::string SkippedRowsNote() const {
    const int64_t rows = reader_ ? reader_->skipped_rows() : pool_skipped_rows_;
    if (rows == 0) return "";
    return fmt::format("{}: {} row{} skipped: {}", config_.trace_path, rows, rows == 1 ? "" : "s",
                       reader_ ? reader_->skipped_rows_reason() : pool_skipped_reason_);
  }

  // With sessions, max_requests is applied as the turns are generated, in session order
  // (StartSession), so that it cuts the same requests at any arrival rate.
  std::optional<RequestSpec> Next() {
    if (sessions_on()) return NextTurn();
    if (config_.max_requests > 0 && next_id_ >= config_.max_requests) return std::nullopt;
    return NextSingle();
  }

 private:
  // A session turn generated ahead of its arrival; `order` breaks ties of arrival
  // (earlier sessions first, then earlier turns).
  struct Pending {
    RequestSpec spec;
    int64_t order = 0;
  };

  bool sessions_on() const { return config_.sessions.turns > 0; }

  // The next request without sessions: one row, one request.
  std::optional<RequestSpec> NextSingle() {
    std::optional<TraceRecord> row;
    if (!ReadRow(row)) return std::nullopt;
    TraceRecord* r = row ? &*row : nullptr;
    RequestSpec spec;
    spec.id = next_id_++;
    spec.arrival = NextArrival(r);
    DrawLengths(r, spec);
    if (const int64_t group = DrawSharedPrefixGroup(); group >= 0) {
      const int64_t tokens = config_.shared_prefix.tokens;
      spec.prompt_tokens += tokens;
      spec.stream = StreamId(StreamKind::kSharedPrefix, group);
      spec.stream_tokens = tokens;
      spec.hash_ids.clear();  // they describe the prompt without the shared prefix
    }
    return spec;
  }

  // The next session turn in arrival order. Sessions start in arrival order, so a
  // pending turn that arrives no later than the latest session start cannot be
  // preceded by a turn of a session not started yet.
  std::optional<RequestSpec> NextTurn() {
    while (!rows_exhausted_ && !TurnLimitReached() &&
           (pending_.empty() || Top().arrival > last_session_start_)) {
      StartSession();
    }
    if (pending_.empty()) return std::nullopt;
    std::pop_heap(pending_.begin(), pending_.end(), LaterFirst);
    RequestSpec spec = std::move(pending_.back().spec);
    pending_.pop_back();
    spec.id = next_id_++;
    return spec;
  }

  const RequestSpec& Top() const { return pending_.front().spec; }

  // Whether max_requests turns (0: no limit) have been generated: no session starts,
  // and the current one ends, after this.
  bool TurnLimitReached() const {
    return config_.max_requests > 0 && turns_queued_ >= config_.max_requests;
  }

  // Heap order for pending_: the earliest arrival (then the smallest order) on top.
  static bool LaterFirst(const Pending& a, const Pending& b) {
    if (a.spec.arrival != b.spec.arrival) return a.spec.arrival > b.spec.arrival;
    return a.order > b.order;
  }

  // Reads the rows of the next session and queues all its turns (none when the rows
  // have run out; fewer than `turns` when they run out within it, or when max_requests
  // turns are reached within it). Sessions take their rows and length draws in order,
  // and turns count against max_requests here, session by session, not as Next returns
  // them in arrival order: which requests a workload holds does not depend on the
  // arrival process or its rate.
  void StartSession() {
    std::optional<TraceRecord> row;
    if (!ReadRow(row)) {
      rows_exhausted_ = true;
      return;
    }
    const int64_t session = sessions_started_++;
    const Nanos start = NextArrival(row ? &*row : nullptr);
    last_session_start_ = start;
    const uint64_t stream = StreamId(StreamKind::kSession, session);
    RequestSpec turn;
    DrawLengths(row ? &*row : nullptr, turn);
    if (const int64_t group = DrawSharedPrefixGroup(); group >= 0) {
      // The system prompt opens turn 1 and so every later turn; other sessions with
      // the same group share it through the hash id.
      const int64_t tokens = config_.shared_prefix.tokens;
      turn.prompt_tokens += tokens;
      turn.hash_ids.assign(1, StreamId(StreamKind::kSharedPrefixBlock, group));
      turn.hash_block_tokens = tokens;
    } else {
      // Later turns extend turn 1's prompt, so only its whole blocks stay true for them
      // (and for turn 1, so that every turn names those tokens alike).
      const auto whole = static_cast<size_t>(turn.prompt_tokens / turn.hash_block_tokens);
      if (turn.hash_ids.size() > whole) turn.hash_ids.resize(whole);
    }
    const double start_s = ToSeconds(start);
    for (int64_t k = 0;; ++k) {
      const double arrival_s = start_s + static_cast<double>(k) * config_.sessions.think_time_s;
      if (!(arrival_s <= kMaxSimulatedSeconds)) {
        FailKey(kWorkloadPrefix, "sessions.think_time_s",
                fmt::format("turn {} of session {} would arrive at {:g} s, past the {:g} s kvsim "
                            "simulates; shorten the think time or the sessions",
                            k + 1, session, arrival_s, kMaxSimulatedSeconds));
      }
      turn.arrival = start + k * think_time_;
      turn.stream = stream;
      turn.stream_tokens = turn.prompt_tokens + turn.output_tokens;
      const int64_t context_tokens = turn.stream_tokens;
      const std::vector<uint64_t> hash_ids = turn.hash_ids;
      const int64_t hash_block_tokens = turn.hash_block_tokens;
      pending_.push_back({std::move(turn), next_order_++});
      std::push_heap(pending_.begin(), pending_.end(), LaterFirst);
      ++turns_queued_;
      if (k + 1 == config_.sessions.turns || TurnLimitReached()) break;
      if (!ReadRow(row)) {
        rows_exhausted_ = true;
        break;
      }
      RequestSpec message;  // the next user message: its row's prompt and output
      DrawLengths(row ? &*row : nullptr, message);
      turn = RequestSpec();
      turn.prompt_tokens = context_tokens + message.prompt_tokens;
      turn.output_tokens = message.output_tokens;
      turn.hash_ids = hash_ids;
      turn.hash_block_tokens = hash_block_tokens;
    }
  }

  // Reads the next trace row into `row` when the workload reads a trace (else leaves
  // it empty). False when the trace has no more rows; throws InputError
  // (TraceReader::NoRequestsMessage) when it had none at all.
  bool ReadRow(std::optional<TraceRecord>& row) {
    row.reset();
    if (!reader_) return true;
    row = reader_->Next();
    if (!row) {
      if (rows_read_ == 0) throw InputError(reader_->NoRequestsMessage());
      return false;
    }
    ++rows_read_;
    CheckTraceTokens(*row, config_.trace_path);
    return true;
  }

  // Sets spec's prompt and output tokens (and, for trace lengths, its hash_ids) from
  // the length source; `row` is the current trace row, or null without a trace.
  void DrawLengths(TraceRecord* row, RequestSpec& spec) {
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
  }

  // The shared prompt a request (with sessions: a session) carries: a group in
  // [0, groups), or -1 for none (always -1 when shared prefixes are off).
  int64_t DrawSharedPrefixGroup() {
    const SharedPrefixConfig& prefix = config_.shared_prefix;
    if (prefix.tokens == 0) return -1;
    if (!(prefix_rng_.Uniform01() < prefix.fraction)) return -1;
    return prefix_rng_.UniformInt(0, prefix.groups - 1);
  }

  // Arrival of the next request (with sessions: of the next session's first turn).
  // `row` is the current trace row, or null without a trace. With sessions, synthetic
  // gaps have `turns` times the mean, so that requests still arrive at rate_qps.
  Nanos NextArrival(const TraceRecord* row) {
    const double gaps_per_arrival = sessions_on() ? static_cast<double>(config_.sessions.turns) : 1;
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
        clock_s_ += arrival_rng_.Exponential(gaps_per_arrival / config_.rate_qps);
        break;
      case ArrivalProcess::kGamma: {
        const double cv2 = config_.cv * config_.cv;
        clock_s_ += arrival_rng_.Gamma(1.0 / cv2, cv2 * gaps_per_arrival / config_.rate_qps);
        break;
      }
    }
    if (!(clock_s_ <= kMaxSimulatedSeconds)) {
      const std::string what = sessions_on()
                                   ? fmt::format("session {} would start", sessions_started_ - 1)
                                   : fmt::format("request {} would arrive", next_id_);
      FailKey(kWorkloadPrefix, "arrival.rate_qps",
              fmt::format("{} at {:g} s at {:g} req/s, past the {:g} s kvsim simulates; raise the "
                          "rate or lower max_requests",
                          what, clock_s_, config_.rate_qps, kMaxSimulatedSeconds));
    }
    return SecondsToNanos(clock_s_);
  }

  // Reads the arrival column of the rows that will be used (up to max_requests) and
  // returns the factor that maps recorded seconds to seconds at rate_qps. Throws
  // InputError for a trace without rows (TraceReader::NoRequestsMessage) or one whose
  // used rows span no time.
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
    if (n == 0) throw InputError(ahead->NoRequestsMessage());
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

  // Reads every row's (prompt, output) pair for resampling; throws InputError
  // (TraceReader::NoRequestsMessage) when there is none.
  void LoadLengthPool() {
    std::unique_ptr<TraceReader> all =
        OpenTrace(config_.trace_path, config_.trace_format, config_.columns);
    while (std::optional<TraceRecord> r = all->Next()) {
      CheckTraceTokens(*r, config_.trace_path);
      pool_.emplace_back(r->prompt_tokens, r->output_tokens);
    }
    pool_skipped_rows_ = all->skipped_rows();
    pool_skipped_reason_ = all->skipped_rows_reason();
    if (pool_.empty()) throw InputError(all->NoRequestsMessage());
  }

  WorkloadConfig config_;
  Rng arrival_rng_;
  Rng length_rng_;
  Rng prefix_rng_;                       // shared-prefix draws: whether, and which group
  std::unique_ptr<TraceReader> reader_;  // set for trace arrivals or trace lengths
  double time_scale_ = 1.0;              // recorded seconds -> simulated seconds
  bool have_first_arrival_ = false;
  double first_arrival_s_ = 0;                     // recorded arrival of the first used row, s
  double clock_s_ = 0;                             // synthetic arrival clock, s
  std::vector<std::pair<int64_t, int64_t>> pool_;  // (prompt, output) rows for resampling
  int64_t pool_skipped_rows_ = 0;                  // rows the pool's reader skipped
  std::string pool_skipped_reason_;
  int64_t next_id_ = 0;
  int64_t rows_read_ = 0;  // trace rows reader_ has returned
  // Sessions: the turns generated ahead (a min-heap by arrival, then order), and
  // where the generation stands.
  Nanos think_time_{0};
  std::vector<Pending> pending_;
  int64_t next_order_ = 0;
  int64_t sessions_started_ = 0;
  int64_t turns_queued_ = 0;     // turns generated so far, counted against max_requests
  Nanos last_session_start_{0};  // first-turn arrival of the latest session started
  bool rows_exhausted_ = false;  // the trace has no more rows for new sessions or turns
};

Workload::Workload(const WorkloadConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Workload::~Workload() = default;

std::optional<RequestSpec> Workload::Next() { return impl_->Next(); }

std::string Workload::SkippedRowsNote() const { return impl_->SkippedRowsNote(); }

}  // namespace kvsim
