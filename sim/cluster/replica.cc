// Replica: scheduling, iteration timing and token bookkeeping of one engine.
#include "sim/cluster/replica.h"

#include <algorithm>
#include <utility>

#include "sim/core/check.h"

namespace kvsim {

Replica::Replica(int64_t index, std::unique_ptr<KvCacheManager> kv,
                 std::unique_ptr<BatchScheduler> scheduler, const ExecutionTimeModel& timing,
                 Metrics& metrics, Nanos request_finish)
    : index_(index),
      kv_(std::move(kv)),
      scheduler_(std::move(scheduler)),
      timing_(timing),
      metrics_(metrics),
      request_finish_(request_finish) {}

void Replica::Enqueue(RequestSpec spec) {
  auto seq = std::make_unique<Sequence>();
  seq->spec = std::move(spec);
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

Nanos Replica::StartIteration(Nanos now) {
  KVSIM_CHECK(!busy(), "a replica runs one iteration at a time");
  scheduler_->Schedule(queues_, *kv_, batch_);
  if (batch_.empty()) {
    // Nothing can run only when nothing is queued: the builder guarantees that
    // any admissible request fits an empty cache.
    KVSIM_CHECK(queues_.running.empty() && queues_.waiting.empty(),
                "the scheduler left queued requests with an empty batch");
    return Nanos(0);
  }
  for (Sequence* seq : batch_.seqs) {
    if (seq->first_scheduled < Nanos(0)) seq->first_scheduled = now;
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
  metrics_.RecordIteration({.start = now,
                            .duration = duration,
                            .replica = index_,
                            .running = static_cast<int64_t>(batch_.seqs.size()),
                            .waiting = static_cast<int64_t>(queues_.waiting.size()),
                            .prefill_tokens = batch_.prefill_tokens,
                            .decode_tokens = batch_.decode_tokens,
                            .allocated_bytes = usage.allocated_bytes,
                            .live_bytes = usage.live_bytes,
                            .cached_bytes = usage.cached_bytes,
                            .exposed_overhead = exposed});
  last_start_ = now;
  return duration;
}

void Replica::CompleteIteration(Nanos now) {
  KVSIM_CHECK(busy(), "no iteration in flight");
  bool any_finished = false;
  for (Sequence* seq : batch_.seqs) {
    seq->computed += seq->scheduled_tokens;
    seq->scheduled_tokens = 0;
    if (seq->computed != seq->KnownTokens()) continue;  // a prefill chunk, no token yet
    ++seq->generated;
    if (seq->first_token < Nanos(0)) {
      seq->first_token = now;
    } else {
      metrics_.RecordToken(now - seq->last_token);
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
                              .preemptions = seq->preemptions});
    }
  }
  if (any_finished) {
    std::erase_if(queues_.running,
                  [](const std::unique_ptr<Sequence>& s) { return s->Finished(); });
  }
  batch_.Clear();
}

}  // namespace kvsim
