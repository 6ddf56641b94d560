// BatchScheduler: decides, before each iteration, which sequences run and how many
// tokens each computes, asking the KV manager for memory as it goes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sim/batching/sequence.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

enum class SchedulerType { kVllm, kSarathi, kStaticBatching };

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
};

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
// in chunks of at most chunk_tokens.
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

const char* SchedulerTypeName(SchedulerType type);

// Shared scheduling steps (sequence.cc).
// Adds `seq` to `batch` with `tokens` to compute this iteration.
void AddToBatch(Sequence& seq, int64_t tokens, Batch& batch);
// Preempts running[index] by recompute: releases its KV and moves it to the front
// of the waiting queue (taking it out of `batch` if it was planned already).
void PreemptRunning(SequenceQueues& queues, size_t index, KvCacheManager& kv, Batch& batch);
// Grows running[index] by `tokens`, preempting from the back of the running list
// (most recently admitted first) until it fits. Returns false when running[index]
// itself had to be preempted.
bool GrowOrPreempt(SequenceQueues& queues, size_t index, int64_t tokens, GrowthPhase phase,
                   KvCacheManager& kv, Batch& batch);
// Admits waiting.front() with `tokens` to compute now; moves it to running.
// Returns false (nothing changes) when the KV manager refuses.
bool AdmitFront(SequenceQueues& queues, int64_t tokens, KvCacheManager& kv, Batch& batch);

}  // namespace kvsim
