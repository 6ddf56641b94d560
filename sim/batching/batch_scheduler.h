// BatchScheduler: decides, before each iteration, which sequences run and how many
// tokens each computes, asking the KV manager for memory as it goes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sim/batching/sequence.h"
#include "sim/core/enum_table.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

enum class SchedulerType { kVllm, kSarathi, kStaticBatching, kVllmV1 };
// scheduler.type.
inline constexpr auto kSchedulerTypes =
    MakeEnumTable<SchedulerType>({{"vllm", SchedulerType::kVllm},
                                  {"sarathi", SchedulerType::kSarathi},
                                  {"static_batching", SchedulerType::kStaticBatching},
                                  {"vllm_v1", SchedulerType::kVllmV1}});
// kSchedulerTypes' name, as a C string (kept for its many call sites).
inline const char* SchedulerTypeName(SchedulerType type) { return kSchedulerTypes.CName(type); }

// One iteration's plan. Each entry is a running sequence with scheduled_tokens >= 1.
struct Batch {
  std::vector<Sequence*> seqs;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t preempted = 0;  // sequences preempted while planning this iteration

  bool empty() const { return seqs.empty(); }
  void Clear() {
    seqs.clear();
    prefill_tokens = decode_tokens = preempted = 0;
  }
};

class BatchScheduler {
 public:
  virtual ~BatchScheduler() = default;

  // Plans the next iteration: admits waiting sequences (kv.Admit), grows running
  // ones (kv.Grow) and, when growth is refused, preempts by recompute: the most
  // recently admitted running sequence releases its KV, forgets its computed
  // tokens and returns to the front of the waiting queue.
  // REQUIRES: batch is empty; every running sequence has no scheduled tokens.
  // ENSURES: batch.seqs point into queues.running; if running was non-empty or a
  // waiting sequence fits an empty cache, the batch is non-empty.
  virtual void Schedule(SequenceQueues& queues, KvCacheManager& kv, Batch& batch) = 0;

  // Skip-ahead (Replica): true when Schedule, on `queues` as they are and with every
  // KV growth granted, would plan every running sequence for exactly one decode
  // token, in running order, and do nothing else (no admission, no preemption).
  // Depends only on the queues' sizes and on which sequences are decodes, so a run
  // of decode iterations that finishes no sequence leaves the answer unchanged.
  // The default, false, never skips.
  virtual bool SchedulesAllDecodes(const SequenceQueues& queues) const {
    (void)queues;
    return false;
  }
};

// Whether every running sequence is decoding (Sequence::IsDecode); false when none runs.
bool AllRunningDecode(const SequenceQueues& queues);

// vLLM-style continuous batching: waiting prompts are admitted whole, FCFS, and a
// batch that admits prompts runs only prefills (prefill-prioritized); otherwise
// every running sequence decodes one token.
struct VllmSchedulerConfig {
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 8192;
};
std::unique_ptr<BatchScheduler> NewVllmScheduler(const VllmSchedulerConfig& config);

// Sarathi-style chunked prefill: a per-iteration token budget
// min(chunk_tokens, max_num_batched_tokens) is given to decodes first, then to
// running partial prefills, then to new admissions (none in a plan that preempted),
// in chunks of at most chunk_tokens. A waiting sequence is admitted only when the
// KV of its whole pending prompt (prompt + generated tokens for a recompute) fits,
// and that KV is held from admission on, so its later chunks never need memory.
// This is the rule of vLLM V0's chunked-prefill scheduler, which Sarathi-Serve's
// policy became: its block manager admits a prompt only when the blocks of all its
// tokens fit (SelfAttnBlockSpaceManager.can_allocate in vllm/core/block_manager.py)
// and allocates them all at once (allocate()).
struct SarathiSchedulerConfig {
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 8192;
  int64_t chunk_tokens = 512;
};
std::unique_ptr<BatchScheduler> NewSarathiScheduler(const SarathiSchedulerConfig& config);

// Request-level static batching (FasterTransformer): when nothing runs, up to
// max_num_seqs waiting requests form a batch that is prefilled together and then
// decoded until its last member finishes; nothing joins a batch in flight.
struct StaticBatchingSchedulerConfig {
  int64_t max_num_seqs = 256;
};
std::unique_ptr<BatchScheduler> NewStaticBatchingScheduler(
    const StaticBatchingSchedulerConfig& config);

// vLLM V1's scheduler, after Scheduler.schedule() in vLLM's
// vllm/v1/core/sched/scheduler.py (FCFS policy). Chunked prefill is always on and
// one token budget of max_num_batched_tokens per iteration is shared by all
// requests; there is no prefill or decode phase.
// 1. RUNNING requests, in running (admission) order, while budget is left: each is
//    given min(pending tokens, budget left), so a decode gets 1 and a partial
//    prefill its next chunk. KV is allocated only for the tokens scheduled now
//    (KVCacheManager.allocate_slots); when that fails, the last running request is
//    preempted by recompute (self.running.pop(): its KV is freed and it goes to the
//    front of the waiting queue) and the allocation is retried, until the request
//    itself is the victim, which ends this step.
// 2. WAITING requests, FCFS, only if step 1 preempted nobody, while budget is left
//    and fewer than max_num_seqs run: each is given min(pending, budget left) tokens
//    and KV for those tokens only; the first whose allocation fails stops admission.
//    With reserve_full_isl (scheduler_reserve_full_isl, vLLM PR #37307, March 2026;
//    on in vLLM 0.19, as the ground-truth runs' resolved config shows), a waiting
//    request is admitted only when its whole pending prompt would fit
//    (KvCacheManager::CanAdmit), though it still gets KV for its first chunk only.
// A chunk is capped by long_prefill_token_threshold only when that is > 0; it
// defaults to 0 and is set (to 4% of max_model_len) only when
// max_num_partial_prefills > 1, which defaults to 1 (vllm/config/scheduler.py), so
// no per-chunk cap is modelled. V1's allocator refuses only when the free blocks
// are too few (allocate_slots in vllm/v1/core/kv_cache_manager.py): there is no
// admission watermark (a later watermark option defaults to 0), so run this
// scheduler with kv_cache.watermark: 0. Not modelled: prefix caching, speculative
// decoding (async scheduling is an engine cost: timing.engine).
struct VllmV1SchedulerConfig {
  int64_t max_num_seqs = 256;
  // vLLM's API-server default on GPUs below 70 GiB and on A100s; on H100/H200-class
  // GPUs vLLM defaults to 8192 (EngineArgs defaults in vllm/engine/arg_utils.py).
  int64_t max_num_batched_tokens = 2048;
  bool reserve_full_isl = true;  // admit only when the whole pending prompt fits
};
std::unique_ptr<BatchScheduler> NewVllmV1Scheduler(const VllmV1SchedulerConfig& config);

// Shared scheduling steps (sequence.cc).
// Adds `seq` to `batch` with `tokens` to compute this iteration.
void AddToBatch(Sequence& seq, int64_t tokens, Batch& batch);
// Preempts running[index] by recompute: releases its KV and moves it to the front
// of the waiting queue (taking it out of `batch` if it was planned already).
void PreemptRunning(SequenceQueues& queues, size_t index, KvCacheManager& kv, Batch& batch);
// Schedules `tokens` more tokens of running[index], growing its KV to
// computed + tokens unless it already holds that much (held_tokens), preempting
// from the back of the running list (most recently admitted first) until the
// growth fits. Returns false when running[index] itself had to be preempted.
bool GrowOrPreempt(SequenceQueues& queues, size_t index, int64_t tokens, GrowthPhase phase,
                   KvCacheManager& kv, Batch& batch);
// What `spec`'s tokens are, for KvCacheManager::Identify: its hash_ids up to its
// prompt, its stream up to prompt + output, its id. Valid while `spec` lives.
PrefixIdentity PrefixOf(const RequestSpec& spec);
// Tokens of waiting.front() whose KV the manager holds already: a shared prefix other
// requests computed, or its own blocks from before a preemption
// (KvCacheManager::CachedPrefixTokens over its pending tokens); an admission reuses
// them, so they are not computed again.
int64_t CachedPrefix(const SequenceQueues& queues, const KvCacheManager& kv);
// Admits waiting.front() holding KV for `hold_tokens` tokens, of which the first
// CachedPrefix are reused and the next `compute_tokens` are computed now; moves it
// to running. Returns false (nothing changes) when the KV manager refuses.
// REQUIRES: 1 <= compute_tokens; CachedPrefix + compute_tokens <= hold_tokens <=
// waiting.front()->PendingTokens().
bool AdmitFront(SequenceQueues& queues, int64_t hold_tokens, int64_t compute_tokens,
                KvCacheManager& kv, Batch& batch);

}  // namespace kvsim
