// RequestSpec: one inference request as the workload presents it to the cluster.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/core/time.h"

namespace kvsim {

struct RequestSpec {
  int64_t id = 0;             // 0, 1, 2, ... in arrival order
  Nanos arrival{0};           // arrival time since simulation start
  int64_t prompt_tokens = 0;  // > 0
  int64_t output_tokens = 0;  // > 0 (tokens to generate, the first included)
  // What the request's tokens are, as far as prefix caching can tell (KvCacheManager,
  // PrefixIdentity). Two requests hold the same KV in their first T tokens when
  // either of these says so; tokens neither covers are the request's own.
  //
  // hash_ids: a trace's prefix-block hashes, one per hash_block_tokens tokens
  // (Mooncake: 512), chained: equal ids at index i mean equal tokens
  // [0, (i + 1) x hash_block_tokens) (the last block may be partial, up to the
  // prompt's end). Empty when the trace has none.
  std::vector<uint64_t> hash_ids;
  int64_t hash_block_tokens = 512;
  // A content stream the request's first stream_tokens tokens are the start of: a
  // shared system prompt (stream_tokens = its length), or a multi-turn session whose
  // every turn extends the previous one (stream_tokens = prompt + output: the answer
  // is part of the next turn's prompt). Requests naming the same stream have the same
  // tokens at the same positions up to their stream_tokens. 0: no stream.
  uint64_t stream = 0;
  int64_t stream_tokens = 0;
};

}  // namespace kvsim
