// Replica: scheduling, iteration timing and token bookkeeping of one engine.
#include "sim/cluster/replica.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// Adds token gaps to the TBT histogram, equal gaps in a row (sequences that all
// emitted at the previous iteration's end) as one add with a count.
class GapRecorder {
 public:
  explicit GapRecorder(Metrics& metrics) : metrics_(metrics) {}
  ~GapRecorder() { Flush(); }
  GapRecorder(const GapRecorder&) = delete;
  GapRecorder& operator=(const GapRecorder&) = delete;

  void Add(Nanos gap) {
    if (count_ > 0 && gap == gap_) {
      ++count_;
      return;
    }
    Flush();
    gap_ = gap;
    count_ = 1;
  }
  void Flush() {
    if (count_ > 0) metrics_.RecordTokens(gap_, count_);
    count_ = 0;
  }

 private:
  Metrics& metrics_;
  Nanos gap_{0};
  int64_t count_ = 0;
};

}  // namespace

Replica::Replica(int64_t index, std::unique_ptr<KvCacheManager> kv,
                 std::unique_ptr<BatchScheduler> scheduler, const ExecutionTimeModel& timing,
                 Metrics& metrics, Nanos request_finish, bool skip_ahead)
    : index_(index),
      kv_(std::move(kv)),
      scheduler_(std::move(scheduler)),
      timing_(timing),
      metrics_(metrics),
      request_finish_(request_finish),
      skip_ahead_(skip_ahead) {}

void Replica::Enqueue(RequestSpec spec) {
  auto seq = std::make_unique<Sequence>();
  seq->spec = std::move(spec);
  kv_->Identify(seq->spec.id, PrefixOf(seq->spec));
  metrics_.CountQueued(seq->spec.arrival);
  queues_.waiting.push_back(std::move(seq));
}

BatchWork Replica::Describe() const {
  BatchWork w;
  w.layout = kv_->layout();
  w.block_tokens = kv_->block_tokens();
  w.num_seqs = static_cast<int64_t>(batch_.seqs.size());
  w.prefill_tokens = batch_.prefill_tokens;
  w.decode_tokens = batch_.decode_tokens;
  for (const Sequence* seq : batch_.seqs) {
    const int64_t cached = seq->computed;
    const int64_t n = seq->scheduled_tokens;
    if (seq->IsDecode()) {
      w.decode_context_tokens += cached + 1;  // the new token attends to itself too
    } else {
      ++w.prefill_seqs;
      const auto c = static_cast<double>(n);
      w.prefill_attention_pairs += c * static_cast<double>(cached) + c * (c + 1) / 2;
    }
    if (cached + n == seq->KnownTokens()) ++w.logit_tokens;
    w.max_context_tokens = std::max(w.max_context_tokens, cached + n);
  }
  return w;
}

Nanos Replica::StartIteration(Nanos now, Nanos horizon) {
  KVSIM_CHECK(!busy(), "a replica runs one iteration at a time");
  if (skip_ahead_) {
    const Nanos run = StartDecodeRun(now, horizon);
    if (run > Nanos(0)) return run;
  }
  scheduler_->Schedule(queues_, *kv_, batch_);
  if (batch_.empty()) {
    // Nothing can run only when nothing is queued: the builder guarantees that
    // any admissible request fits an empty cache.
    KVSIM_CHECK(queues_.running.empty() && queues_.waiting.empty(),
                "the scheduler left queued requests with an empty batch");
    return Nanos(0);
  }
  for (Sequence* seq : batch_.seqs) {
    if (seq->first_scheduled < Nanos(0)) {
      seq->first_scheduled = now;
      metrics_.CountStarted(now);
    }
  }

  const Nanos compute = timing_.IterationTime(Describe());
  // vAttention: background work runs from the start of the previous iteration until
  // this one starts (idle gap included); only the excess is exposed.
  kv_->OnIterationStart();
  const KvStepCost cost = kv_->TakeStepCost();
  const Nanos behind = last_start_ >= Nanos(0) ? now - last_start_ : Nanos(0);
  const Nanos background_exposed = std::max(Nanos(0), cost.background - behind);
  const Nanos exposed = cost.synchronous + background_exposed;
  metrics_.RecordKvCalls(cost.map_calls, cost.unmap_calls, exposed,
                         cost.background - background_exposed);

  const Nanos duration = compute + exposed;
  KVSIM_CHECK(compute > Nanos(0) && exposed >= Nanos(0) && duration >= compute,
              "an iteration must take positive time");
  const KvUsage usage = kv_->Usage();
  KVSIM_CHECK(usage.live_bytes <= usage.allocated_bytes &&
                  usage.allocated_bytes + usage.cached_bytes <= usage.capacity_bytes,
              "KV usage must satisfy live <= allocated and allocated + cached <= capacity");
  // A prompt admitted whole but computed in chunks (sarathi, vllm_v1) holds KV for
  // tokens no chunk has written yet, nor this iteration writes: held, not live.
  int64_t unwritten_tokens = 0;
  for (const std::unique_ptr<Sequence>& seq : queues_.running) {
    unwritten_tokens +=
        std::max<int64_t>(0, seq->held_tokens - seq->computed - seq->scheduled_tokens);
  }
  const int64_t live_bytes = usage.live_bytes - unwritten_tokens * usage.bytes_per_token;
  KVSIM_CHECK(live_bytes >= 0, "held tokens not yet written exceed the live KV");
  metrics_.RecordIteration({.start = now,
                            .duration = duration,
                            .replica = index_,
                            .running = static_cast<int64_t>(batch_.seqs.size()),
                            .waiting = static_cast<int64_t>(queues_.waiting.size()),
                            .prefill_tokens = batch_.prefill_tokens,
                            .decode_tokens = batch_.decode_tokens,
                            .allocated_bytes = usage.allocated_bytes,
                            .live_bytes = live_bytes,
                            .cached_bytes = usage.cached_bytes,
                            .exposed_overhead = exposed});
  last_start_ = now;
  return duration;
}

Nanos Replica::StartDecodeRun(Nanos now, Nanos horizon) {
  // Iteration 1 would be every running sequence decoding one token (the scheduler
  // says so, given the growth), iteration j grows each to held + j tokens.
  if (!scheduler_->SchedulesAllDecodes(queues_)) return Nanos(0);
  const auto n = static_cast<int64_t>(queues_.running.size());
  // A sequence emits its last token in iteration output - generated: the run ends
  // there at the latest. Iteration 1's work, as Describe() would give it.
  int64_t rounds = std::numeric_limits<int64_t>::max();
  BatchWork work;
  work.layout = kv_->layout();
  work.block_tokens = kv_->block_tokens();
  work.num_seqs = work.decode_tokens = work.logit_tokens = n;
  run_ids_.clear();
  run_tokens_.clear();
  for (const auto& seq : queues_.running) {
    if (seq->held_tokens != seq->computed) return Nanos(0);
    rounds = std::min(rounds, seq->spec.output_tokens - seq->generated);
    run_ids_.push_back(seq->spec.id);
    run_tokens_.push_back(seq->held_tokens);
    work.decode_context_tokens += seq->computed + 1;  // the new token attends to itself
    work.max_context_tokens = std::max(work.max_context_tokens, seq->computed + 1);
  }
  rounds = kv_->CertainDecodeRounds(run_ids_, run_tokens_, rounds);
  if (rounds < 1) return Nanos(0);  // growth not certain: the scheduler decides (preempts)

  // Iteration j + 1 reads one more token of KV per sequence than iteration j, and
  // starts when it ends; none after the first may start at or after the horizon.
  run_durations_.clear();
  run_durations_.push_back(timing_.IterationTime(work));
  timing_.DecodeRunTimes(work, now + run_durations_[0], horizon, rounds - 1, run_durations_);
  rounds = static_cast<int64_t>(run_durations_.size());
  kv_->GrowDecodeRounds(run_ids_, run_tokens_, rounds, run_usage_);

  const auto waiting = static_cast<int64_t>(queues_.waiting.size());
  Nanos start = now;
  for (int64_t j = 1; j <= rounds; ++j) {
    const Nanos d = run_durations_[static_cast<size_t>(j - 1)];
    const KvUsage& usage = run_usage_[static_cast<size_t>(j - 1)];
    metrics_.RecordIteration({.start = start,
                              .duration = d,
                              .replica = index_,
                              .running = n,
                              .waiting = waiting,
                              .prefill_tokens = 0,
                              .decode_tokens = n,
                              .allocated_bytes = usage.allocated_bytes,
                              .live_bytes = usage.live_bytes,  // every one decoding
                              .cached_bytes = usage.cached_bytes,
                              .exposed_overhead = Nanos(0)});
    if (j < rounds) {
      // Iteration j completes: in iteration 1 each sequence's own gap since its
      // previous token, after that one iteration's duration for every sequence.
      if (j == 1) {
        batch_.seqs.clear();
        for (const auto& seq : queues_.running) batch_.seqs.push_back(seq.get());
        RecordTokenGaps(start + d);
      } else {
        metrics_.RecordTokens(d, n);
      }
    }
    last_start_ = start;
    start += d;
  }
  // The sequences as stepping would leave them, with iteration `rounds` in flight.
  batch_.seqs.clear();
  const bool offer = kv_->WantsComputedTokens();
  for (const auto& seq : queues_.running) {
    seq->computed += rounds - 1;
    if (offer) kv_->OnTokensComputed(seq->spec.id, seq->computed);
    seq->generated += rounds - 1;
    seq->held_tokens += rounds;
    seq->scheduled_tokens = 1;
    if (rounds > 1) seq->last_token = last_start_;
    batch_.seqs.push_back(seq.get());
  }
  batch_.decode_tokens = n;
  return start - now;
}

void Replica::RecordTokenGaps(Nanos now) {
  GapRecorder gaps(metrics_);
  for (const Sequence* seq : batch_.seqs) gaps.Add(now - seq->last_token);
}

void Replica::CompleteIteration(Nanos now) {
  KVSIM_CHECK(busy(), "no iteration in flight");
  bool any_finished = false;
  GapRecorder gaps(metrics_);
  const bool offer = kv_->WantsComputedTokens();
  for (Sequence* seq : batch_.seqs) {
    seq->computed += seq->scheduled_tokens;
    seq->scheduled_tokens = 0;
    if (offer) kv_->OnTokensComputed(seq->spec.id, seq->computed);
    if (seq->computed != seq->KnownTokens()) continue;  // a prefill chunk, no token yet
    ++seq->generated;
    if (seq->first_token < Nanos(0)) {
      seq->first_token = now;
    } else {
      gaps.Add(now - seq->last_token);
    }
    seq->last_token = now;
    if (seq->Finished()) {
      any_finished = true;
      kv_->Release(seq->spec.id);
      seq->admitted = false;
      metrics_.RecordRequest({.id = seq->spec.id,
                              .replica = index_,
                              .arrival = seq->spec.arrival,
                              .first_scheduled = seq->first_scheduled,
                              .first_token = seq->first_token,
                              .finish = now + request_finish_,
                              .prompt_tokens = seq->spec.prompt_tokens,
                              .output_tokens = seq->spec.output_tokens,
                              .preemptions = seq->preemptions,
                              .prefix_hit_tokens = seq->prefix_hit_tokens,
                              .recomputed_tokens = seq->recomputed_tokens});
    }
  }
  gaps.Flush();
  if (any_finished) {
    std::erase_if(queues_.running,
                  [](const std::unique_ptr<Sequence>& s) { return s->Finished(); });
  }
  batch_.Clear();
}

}  // namespace kvsim
