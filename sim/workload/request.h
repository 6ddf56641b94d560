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
  // Prefix-block hashes from traces that carry them (Mooncake: one per 512 tokens);
  // kept for prefix-sharing studies, unused by the core managers.
  std::vector<uint64_t> hash_ids;
};

}  // namespace kvsim
