// Scheduling steps shared by every batch scheduler.
#include <algorithm>
#include <vector>

#include "sim/batching/batch_scheduler.h"
#include "sim/core/check.h"

namespace kvsim {

bool AllRunningDecode(const SequenceQueues& queues) {
  if (queues.running.empty()) return false;
  for (const auto& seq : queues.running) {
    if (!seq->IsDecode()) return false;
  }
  return true;
}

void AddToBatch(Sequence& seq, int64_t tokens, Batch& batch) {
  KVSIM_CHECK(tokens >= 1 && tokens <= seq.PendingTokens(), "bad scheduled token count");
  seq.scheduled_tokens = tokens;
  if (seq.IsDecode()) {
    batch.decode_tokens += tokens;
  } else {
    batch.prefill_tokens += tokens;
  }
  batch.seqs.push_back(&seq);
}

void PreemptRunning(SequenceQueues& queues, size_t index, KvCacheManager& kv, Batch& batch) {
  KVSIM_CHECK(index < queues.running.size(), "preempting outside the running list");
  std::unique_ptr<Sequence> seq = std::move(queues.running[index]);
  queues.running.erase(queues.running.begin() + static_cast<std::ptrdiff_t>(index));
  if (seq->scheduled_tokens > 0) {
    // Planned earlier in this iteration: take it out of the batch again.
    std::erase(batch.seqs, seq.get());
    (seq->IsDecode() ? batch.decode_tokens : batch.prefill_tokens) -= seq->scheduled_tokens;
    seq->scheduled_tokens = 0;
  }
  kv.ReleaseWritten(seq->spec.id, seq->computed);
  kv.Identify(seq->spec.id, PrefixOf(seq->spec));  // for its next admission
  seq->lost_tokens = seq->computed;
  seq->admitted = false;
  seq->computed = 0;
  seq->held_tokens = 0;
  ++seq->preemptions;
  ++batch.preempted;
  queues.waiting.push_front(std::move(seq));
}

bool GrowOrPreempt(SequenceQueues& queues, size_t index, int64_t tokens, GrowthPhase phase,
                   KvCacheManager& kv, Batch& batch) {
  Sequence& seq = *queues.running[index];
  const int64_t target = seq.computed + tokens;
  if (target > seq.held_tokens) {
    while (!kv.Grow(seq.spec.id, target, phase)) {
      const size_t victim = queues.running.size() - 1;
      PreemptRunning(queues, victim, kv, batch);
      if (victim == index) return false;
    }
    seq.held_tokens = target;
  }
  AddToBatch(seq, tokens, batch);
  return true;
}

PrefixIdentity PrefixOf(const RequestSpec& spec) {
  PrefixIdentity p;
  p.hash_ids = spec.hash_ids;
  p.hash_block_tokens = spec.hash_block_tokens;
  p.hash_tokens = std::min(static_cast<int64_t>(spec.hash_ids.size()) * spec.hash_block_tokens,
                           spec.prompt_tokens);
  p.stream = spec.stream;
  p.stream_tokens = std::min(spec.stream_tokens, spec.prompt_tokens + spec.output_tokens);
  p.request_id = spec.id;
  return p;
}

int64_t CachedPrefix(const SequenceQueues& queues, const KvCacheManager& kv) {
  const Sequence& seq = *queues.waiting.front();
  return kv.CachedPrefixTokens(seq.spec.id, seq.PendingTokens());
}

bool AdmitFront(SequenceQueues& queues, int64_t hold_tokens, int64_t compute_tokens,
                KvCacheManager& kv, Batch& batch) {
  Sequence& seq = *queues.waiting.front();
  KVSIM_CHECK(!seq.admitted && seq.computed == 0 && seq.held_tokens == 0,
              "waiting sequence holds KV");
  const int64_t cached = CachedPrefix(queues, kv);
  KVSIM_CHECK(cached + compute_tokens <= hold_tokens && hold_tokens <= seq.PendingTokens(),
              "admission must hold at least what it reuses and computes, at most what is pending");
  if (!kv.Admit(seq.spec.id, hold_tokens, seq.MaxTokens())) return false;
  seq.admitted = true;
  seq.held_tokens = hold_tokens;
  seq.computed = cached;
  if (seq.preemptions == 0) {
    seq.prefix_hit_tokens = cached;
  } else {
    seq.recomputed_tokens += std::max<int64_t>(0, seq.lost_tokens - cached);
  }
  queues.running.push_back(std::move(queues.waiting.front()));
  queues.waiting.pop_front();
  AddToBatch(*queues.running.back(), compute_tokens, batch);
  return true;
}

}  // namespace kvsim
