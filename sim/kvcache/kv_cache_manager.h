// KvCacheManager: how one replica's KV-cache memory is handed to requests. The
// scheduler calls it to admit, grow and release requests; the timing model learns
// the attention layout and any mapping work it did. All sizes are per GPU (one
// tensor-parallel rank): every rank of a replica holds the same share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sim/core/time.h"

namespace kvsim {

enum class KvManagerType { kStatic, kPaged, kVAttention };

// How attention kernels see the KV cache.
enum class AttentionLayout {
  kContiguous,  // one contiguous (virtual) range per request: unmodified kernels
  kPaged,       // blocks reached through a block table: paged kernels
};

// Which phase a growth serves. Decode growth of vAttention can be mapped ahead,
// behind the previous iteration; prefill growth is mapped synchronously.
enum class GrowthPhase { kPrefill, kDecode };

// Geometry shared by every manager; the builder derives it from the model card,
// the GPU card and the deployment.
struct KvGeometry {
  int64_t capacity_bytes = 0;             // KV budget of one GPU
  int64_t bytes_per_token = 0;            // K and V of all layers, one token, one rank
  int64_t bytes_per_token_per_layer = 0;  // ONE of K or V, one layer, one rank
  int64_t num_layers = 0;
  int64_t max_model_len = 0;  // longest request (prompt + output) in tokens
};

// Usage in bytes on one GPU. Invariant: live <= allocated and
// allocated + cached <= capacity.
struct KvUsage {
  int64_t capacity_bytes = 0;
  int64_t allocated_bytes = 0;  // set aside for admitted requests (reserved, blocks, pages)
  int64_t live_bytes = 0;       // what requests' tokens really occupy
  // Physically mapped but needed by no request: vAttention pages left mapped by
  // deferred reclamation (idle slots, or a reused slot's pages beyond its request's
  // need). Free capacity to the scheduler; unmapped only when the pool runs short.
  int64_t cached_bytes = 0;
};

// Virtual-memory work done by a manager since the last TakeStepCost().
struct KvStepCost {
  Nanos synchronous{0};     // must finish before the next iteration starts
  Nanos background{0};      // may run behind the previous iteration (overlap on)
  int64_t map_calls = 0;    // cuMemMap (+ cuMemSetAccess) calls
  int64_t unmap_calls = 0;  // cuMemUnmap calls
};

class KvCacheManager {
 public:
  virtual ~KvCacheManager() = default;

  // Admits request `id`, which must hold `tokens` tokens now and at most
  // `max_tokens` over its life (prompt + output). Applies the manager's admission
  // rule (reservation fits, watermark, free slot). Returns false and changes
  // nothing when it does not fit.
  // REQUIRES: id not admitted; 1 <= tokens <= max_tokens <= max_model_len.
  virtual bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) = 0;

  // Grows admitted request `id` to hold `tokens` tokens in total. Returns false
  // and changes nothing when the memory is not there (the scheduler then preempts).
  // REQUIRES: id admitted; tokens >= its current tokens; tokens <= max_model_len.
  virtual bool Grow(int64_t id, int64_t tokens, GrowthPhase phase) = 0;

  // Releases request `id` (finished or preempted). REQUIRES: id admitted.
  virtual void Release(int64_t id) = 0;

  virtual KvUsage Usage() const = 0;
  virtual AttentionLayout layout() const = 0;
  // Tokens per block for the paged layout's block table; 0 for contiguous layouts.
  virtual int64_t block_tokens() const { return 0; }
  // vAttention page size in bytes; 0 for other managers.
  virtual int64_t page_bytes() const { return 0; }

  // The largest request (in tokens) an empty cache admits. The builder refuses a
  // deployment whose max_model_len exceeds it.
  virtual int64_t MaxAdmissibleTokens() const = 0;

  // Returns, and clears, the mapping work done since the last call.
  virtual KvStepCost TakeStepCost() { return {}; }
};

// Static reservation (FasterTransformer/Orca era): a request reserves its maximum
// length at admission; growth inside the reservation always succeeds.
struct StaticKvConfig {
  enum class Reserve {
    kMaxModelLen,  // reserve max_model_len tokens per request
    kRequestMax,   // reserve prompt + the request's output tokens (engine told max_tokens)
  };
  Reserve reserve = Reserve::kMaxModelLen;
};
std::unique_ptr<KvCacheManager> NewStaticKvManager(const KvGeometry& geometry,
                                                   const StaticKvConfig& config);

// PagedAttention (vLLM): blocks of block_tokens from one pool; admission keeps
// watermark x total blocks free.
struct PagedKvConfig {
  int64_t block_tokens = 16;
  double watermark = 0.01;  // fraction of blocks kept free at admission
};
std::unique_ptr<KvCacheManager> NewPagedKvManager(const KvGeometry& geometry,
                                                  const PagedKvConfig& config);

// vAttention: per-request virtually contiguous K and V buffers in each layer,
// backed by physical pages of page_bytes mapped on demand through the CUDA VMM API.
// A "page group" is one page in each of the 2 x layers buffers; mapping one costs
// 2 x layers x (map + set_access). Default latencies: H100 medians of
// ../shared reference h100_vmm_probe (cuMemMap 0.65 us, cuMemSetAccess 22.16 us,
// cuMemUnmap 16.14 us).
struct VAttentionKvConfig {
  int64_t page_bytes = 2 << 20;  // 64 KiB, 128 KiB, 256 KiB or 2 MiB
  int64_t max_slots = 256;       // concurrent requests (virtual sub-buffers)
  bool overlap = true;           // map decode growth behind the previous iteration
  bool deferred_reclaim = true;  // finished requests' pages stay with their slot
  double watermark = 0.01;       // fraction of page groups kept free at admission
  Nanos map_latency{650};
  Nanos set_access_latency{22160};
  Nanos unmap_latency{16140};
};
std::unique_ptr<KvCacheManager> NewVAttentionKvManager(const KvGeometry& geometry,
                                                       const VAttentionKvConfig& config);

const char* KvManagerTypeName(KvManagerType type);

// Ceil(a / b) for positive b.
inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace kvsim
