// Sequence: a request's serving state inside one replica, and the queues the
// batch schedulers move sequences between.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "sim/core/time.h"
#include "sim/workload/request.h"

namespace kvsim {

// Token accounting: a sequence knows prompt + generated tokens; `computed` of them
// have KV in the cache. An iteration computes `scheduled_tokens` more; when that
// brings computed up to the known tokens, the sequence emits one new token. This
// one rule covers prefill, chunked prefill, decode and recompute after preemption.
// The KV manager may hold room for more tokens than are computed (`held_tokens`):
// a whole prompt admitted at once but computed in chunks.
struct Sequence {
  RequestSpec spec;              // output_tokens already capped to max_model_len
  int64_t generated = 0;         // output tokens emitted so far
  int64_t computed = 0;          // tokens whose KV is in the cache (0 when not admitted)
  int64_t scheduled_tokens = 0;  // tokens computed in the current iteration
  int64_t held_tokens = 0;       // tokens the KV manager holds for it (>= computed
                                 // while admitted; 0 when not admitted)
  int64_t preemptions = 0;
  int64_t prefix_hit_tokens = 0;  // found cached at the first admission
  int64_t recomputed_tokens = 0;  // computed before a preemption, computed again after
  int64_t lost_tokens = 0;        // computed when last preempted
  bool admitted = false;          // holds KV memory in the manager
  Nanos first_scheduled{-1};      // start of the first iteration that computed it
  Nanos first_token{-1};
  Nanos last_token{-1};

  int64_t KnownTokens() const { return spec.prompt_tokens + generated; }
  int64_t PendingTokens() const { return KnownTokens() - computed; }
  // Decoding: one token to compute, with output already started (a recompute
  // after preemption is a prefill of prompt + generated tokens).
  bool IsDecode() const { return generated > 0 && PendingTokens() == 1; }
  // The most KV tokens it will ever hold: prompt + output - 1 (the last token's
  // KV is never written), but reserve the full prompt + output as engines do.
  int64_t MaxTokens() const { return spec.prompt_tokens + spec.output_tokens; }
  bool Finished() const { return generated >= spec.output_tokens; }
};

// The scheduler's view of one replica. Ownership: the replica owns sequences
// through these containers; the scheduler moves them between the two.
struct SequenceQueues {
  std::deque<std::unique_ptr<Sequence>> waiting;   // FCFS; preempted go to the front
  std::vector<std::unique_ptr<Sequence>> running;  // admitted, in admission order
};

}  // namespace kvsim
