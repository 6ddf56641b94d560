// KvCacheManager: how one replica's KV-cache memory is handed to requests. The
// scheduler calls it to admit, grow and release requests; the timing model learns
// the attention layout and any mapping work it did. All sizes are per GPU (one
// tensor-parallel rank): every rank of a replica holds the same share.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/enum_table.h"
#include "sim/core/time.h"

namespace kvsim {

enum class KvManagerType { kStatic, kPaged, kVAttention };
// kv_cache.type; Summary::kv_manager and the plan's kv_manager column.
inline constexpr auto kKvManagerTypes =
    MakeEnumTable<KvManagerType>({{"static", KvManagerType::kStatic},
                                  {"paged", KvManagerType::kPaged},
                                  {"vattention", KvManagerType::kVAttention}});

// How attention kernels see the KV cache.
enum class AttentionLayout {
  kContiguous,  // one contiguous (virtual) range per request: unmodified kernels
  kPaged,       // blocks reached through a block table: paged kernels
};
// The layout column of kvprobe profiles.
inline constexpr auto kAttentionLayouts = MakeEnumTable<AttentionLayout>(
    {{"contiguous", AttentionLayout::kContiguous}, {"paged", AttentionLayout::kPaged}});

// Which phase a growth serves. Decode growth of vAttention can be mapped ahead,
// behind the previous iteration; prefill growth is mapped synchronously.
enum class GrowthPhase { kPrefill, kDecode };

// Which driver maps vAttention's physical pages.
enum class VmmBackend {
  // The stock CUDA driver's VMM API: pages are multiples of the 2 MiB allocation
  // granularity (cuMemGetAllocationGranularity on Ampere and Hopper); a page costs
  // cuMemMap + cuMemSetAccess to map and cuMemUnmap to reclaim.
  kStock,
  // vAttention's modified open-source UVM driver (NVIDIA open kernel modules
  // 545.23.06, repo nvidia-vattn-uvm-driver/): 64 KiB, 128 KiB or 256 KiB pages only
  // (repo vattention/uvmInternal.h do_cuda_uvm_init; 2 MiB pages always take the
  // stock path, vattention/utils.h is_uvm_backend). One call maps a page and grants
  // access (vattn_mem_map); reclaiming returns the page to the library's pool with no
  // driver call (vattention/mux.h UNMAP_PAGES).
  kUvm,
};
// The resolved backend, as TimingLine prints it; kVmmBackendSettings adds auto.
inline constexpr auto kVmmBackends =
    MakeEnumTable<VmmBackend>({{"stock", VmmBackend::kStock}, {"uvm", VmmBackend::kUvm}});

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
  // Held for no running request but kept as free capacity: vAttention pages left
  // mapped to idle slots (by deferred reclamation, or until the per-iteration
  // reclamation gets to them when it is off) or a reused slot's pages beyond its
  // request's need; with prefix caching, unreferenced cached blocks or page groups
  // kept for reuse (mapped in some range or not). An admission may reuse them, and
  // they are freed (unmapped, evicted) at once when the free pool runs short.
  int64_t cached_bytes = 0;
  // K and V of one token on this GPU (KvGeometry::bytes_per_token), for callers that
  // count tokens: live_bytes is the held tokens' share of it.
  int64_t bytes_per_token = 0;
};

// Virtual-memory work done by a manager since the last TakeStepCost().
struct KvStepCost {
  Nanos synchronous{0};  // must finish before the next iteration starts
  // May run on a background thread between the start of the previous iteration and
  // the start of the next one (overlap on); see Replica::StartIteration.
  Nanos background{0};
  // Pages mapped: stock backend, one cuMemMap (+ one cuMemSetAccess) per page; uvm
  // backend, one map call of the modified driver per page.
  int64_t map_calls = 0;
  int64_t unmap_calls = 0;  // cuMemUnmap calls (stock only: uvm unmaps without a call)
};

// What a request's tokens are, as far as prefix caching can tell (the batching layer
// fills it from RequestSpec). Tokens [0, end) of two requests hold the same KV when
// ContentKey gives both the same key for that `end`.
struct PrefixIdentity {
  // A trace's chained prefix-block hashes (Mooncake): equal ids at index i mean
  // equal tokens [0, (i + 1) x hash_block_tokens); `hash_tokens` of them are covered
  // (at most the prompt).
  std::span<const uint64_t> hash_ids;
  int64_t hash_block_tokens = 512;
  int64_t hash_tokens = 0;
  // A shared content stream (a system prompt, a multi-turn session) covering the
  // first stream_tokens tokens; 0: none.
  uint64_t stream = 0;
  int64_t stream_tokens = 0;
  // The request's own content, for tokens neither covers (and for its own resume).
  int64_t request_id = 0;
};

// Where the KV of tokens [0, end) of a request comes from: its hash_ids when they
// cover `end` (base: the hash id of the hash block holding token end - 1), else its
// stream when that covers `end` (base: the stream), else the request alone (base: its
// id, shared with no other request).
struct ContentSource {
  enum class Kind : uint8_t { kHash = 1, kStream = 2, kOwn = 3 };
  Kind kind = Kind::kOwn;
  uint64_t base = 0;
  bool operator==(const ContentSource&) const = default;
};

// The source of tokens [0, end) of `prefix`, and `last_end`: every end in
// [end, last_end] has that source by the same rule (the hash block's last end, at
// most hash_tokens; stream_tokens; INT64_MAX for kOwn), so that a walk over
// increasing ends needs one call per source, not one per end. REQUIRES: end >= 1.
struct ContentSourceSpan {
  ContentSource source;
  int64_t last_end = 0;
};
ContentSourceSpan ContentSourceAt(const PrefixIdentity& prefix, int64_t end);

// The content key of tokens [0, end) of a request: a function of
// ContentSourceAt(prefix, end).source and `end` alone, so two requests with the same
// source at `end` have the same key there, and (up to 64-bit collisions) only they.
// Never 0. REQUIRES: end >= 1.
uint64_t ContentKey(const PrefixIdentity& prefix, int64_t end);

// The key of `group`, a caller-numbered run of consecutive block ends of one source
// (a prefix cache indexes such runs under one key instead of each block under its
// own): a function of `source` and `group` alone; distinct pairs give distinct keys
// up to 64-bit collisions. Never 0.
uint64_t ContentGroupKey(const ContentSource& source, int64_t group);

class KvCacheManager {
 public:
  virtual ~KvCacheManager() = default;

  // Tells the manager what request `id`'s tokens are, before CachedPrefixTokens and
  // Admit; kept until id's next Release. Managers that share nothing ignore it.
  // `prefix.hash_ids` must stay valid until then.
  virtual void Identify(int64_t id, const PrefixIdentity& prefix) {
    (void)id;
    (void)prefix;
  }

  // Whether the manager wants OnTokensComputed calls (a prefix cache does).
  virtual bool WantsComputedTokens() const { return false; }
  // The first `computed_tokens` tokens of admitted request `id` now have their KV
  // written: a prefix cache may offer its full blocks to other requests. Called
  // after each iteration for the sequences that computed tokens in it.
  virtual void OnTokensComputed(int64_t id, int64_t computed_tokens) {
    (void)id;
    (void)computed_tokens;
  }

  // Admits request `id`, which must hold `tokens` tokens now and at most
  // `max_tokens` over its life (prompt + output). Applies the manager's admission
  // rule (reservation fits, watermark, free slot). Returns false and changes
  // nothing when it does not fit.
  // REQUIRES: id not admitted; 1 <= tokens <= max_tokens <= max_model_len.
  virtual bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) = 0;

  // Whether Admit(id, tokens, max_tokens) would succeed now. Changes nothing (no
  // mapping, no reclamation). REQUIRES: as Admit.
  virtual bool CanAdmit(int64_t id, int64_t tokens, int64_t max_tokens) const = 0;

  // Of the first `tokens` tokens of request `id`, how many have their KV in the
  // cache already: blocks of the same content (Identify) that another request, or
  // an earlier admission of `id` (a preempted request), computed and that were not
  // evicted since. Whole blocks only, at most tokens - 1 (the last token is always
  // computed again, to produce logits). Admit(id, ...) reuses them, so they need not
  // be computed. 0 for managers that keep nothing.
  // REQUIRES: id not admitted; tokens >= 1.
  virtual int64_t CachedPrefixTokens(int64_t id, int64_t tokens) const {
    (void)id;
    (void)tokens;
    return 0;
  }

  // Grows admitted request `id` to hold `tokens` tokens in total. Returns false
  // and changes nothing when the memory is not there (the scheduler then preempts).
  // REQUIRES: id admitted; tokens >= its current tokens; tokens <= max_model_len.
  virtual bool Grow(int64_t id, int64_t tokens, GrowthPhase phase) = 0;

  // Releases request `id` (finished or preempted). REQUIRES: id admitted.
  virtual void Release(int64_t id) = 0;

  // Releases request `id` of which only the first `written_tokens` of the tokens it
  // holds have their KV written (a preempted partial prefill holds its whole prompt
  // but wrote only the chunks computed so far): a cache may keep those and no more.
  // The default forgets the difference (nothing is kept). REQUIRES: id admitted;
  // written_tokens >= 0.
  virtual void ReleaseWritten(int64_t id, int64_t written_tokens) {
    (void)written_tokens;
    Release(id);
  }

  virtual KvUsage Usage() const = 0;
  virtual AttentionLayout layout() const = 0;
  // Tokens per block for the paged layout's block table; 0 for contiguous layouts.
  virtual int64_t block_tokens() const { return 0; }
  // vAttention page size in bytes; 0 for other managers.
  virtual int64_t page_bytes() const { return 0; }
  // The driver that maps vAttention's pages; nullopt for other managers.
  virtual std::optional<VmmBackend> vmm_backend() const { return std::nullopt; }

  // The largest request (in tokens) an empty cache admits. The builder refuses a
  // deployment whose max_model_len exceeds it.
  virtual int64_t MaxAdmissibleTokens() const = 0;

  // Per-iteration upkeep. The replica calls it once per iteration, after the
  // scheduler's Admit/Grow calls for that iteration and before TakeStepCost(); its
  // work is charged to that iteration's cost. vAttention without deferred
  // reclamation reclaims idle slots' pages here (see VAttentionKvConfig).
  virtual void OnIterationStart() {}

  // Returns, and clears, the mapping work done since the last call.
  virtual KvStepCost TakeStepCost() { return {}; }

  // Skip-ahead (Replica): a run of decode iterations advanced at once.
  // A decode round grows every request ids[i], holding tokens[i] + j - 1 tokens, to
  // tokens[i] + j (round j), as Grow(ids[i], tokens[i] + j, kDecode) in order of i.
  // CertainDecodeRounds: the largest r <= limit such that rounds 1..r are certain to
  // succeed, with OnIterationStart() and TakeStepCost() doing and costing nothing
  // between them. Changes nothing. The default, 0, promises nothing.
  // REQUIRES: ids admitted, each holding tokens[i]; ids.size() == tokens.size().
  virtual int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                                      int64_t limit) const {
    (void)ids;
    (void)tokens;
    (void)limit;
    return 0;
  }
  // Applies rounds 1..`rounds` with exactly the effect of those Grow calls; sets
  // usage[j - 1] to Usage() after round j. The default makes the Grow calls.
  // REQUIRES: rounds <= CertainDecodeRounds(ids, tokens, rounds).
  virtual void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                                int64_t rounds, std::vector<KvUsage>& usage);
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
// kv_cache.static_reserve.
inline constexpr auto kStaticReserves = MakeEnumTable<StaticKvConfig::Reserve>(
    {{"max_model_len", StaticKvConfig::Reserve::kMaxModelLen},
     {"request_max", StaticKvConfig::Reserve::kRequestMax}});
std::unique_ptr<KvCacheManager> NewStaticKvManager(const KvGeometry& geometry,
                                                   const StaticKvConfig& config);

// PagedAttention (vLLM): blocks of block_tokens from one pool; admission keeps
// watermark x total blocks free.
struct PagedKvConfig {
  int64_t block_tokens = 16;
  double watermark = 0.01;  // fraction of blocks kept free at admission
  // vLLM's automatic prefix caching (on by default in vLLM V1; vllm/v1/core/
  // block_pool.py, kv_cache_manager.py): each full block of computed tokens is
  // cached under its content key (ContentKey), and a request whose leading blocks
  // have cached keys shares them (reference counts) instead of computing them:
  // other requests' shared prefixes and its own blocks after preemption alike.
  // Freed blocks join a free queue in LRU order (a request's blocks in reverse, its
  // last block first); allocation evicts from the queue's head.
  bool prefix_caching = false;
};
std::unique_ptr<KvCacheManager> NewPagedKvManager(const KvGeometry& geometry,
                                                  const PagedKvConfig& config);

// The CUDA VMM allocation granularity of the stock driver on Ampere and Hopper.
inline constexpr int64_t kStockVmmGranularityBytes = int64_t{2} << 20;
// One uvm map call (map + grant access of one page): about 9 us, the paper's figure
// for its modified driver (120 calls about 1 ms; the driver is introduced in section
// 6.1, the figure as recorded in shared/design/FIDELITY.md section 1, VMM row), not
// a measurement of kvsim's.
inline constexpr Nanos kPaperUvmMapLatency{9'000};

// vAttention: per-request virtually contiguous K and V buffers in each layer,
// backed by physical pages of page_bytes mapped on demand.
// A "page group" is one page in each of the 2 x layers buffers. Mapping one costs
// 2 x layers x (map + set_access) on the stock backend, 2 x layers x uvm_map on
// uvm; unmapping one 2 x layers x unmap on stock, nothing on uvm. Default stock
// latencies: H100 medians of ../shared reference h100_vmm_probe (cuMemMap 0.65 us,
// cuMemSetAccess 22.16 us, cuMemUnmap 16.14 us).
//
// Reclamation (repo vattention/vattention.cu). A finished request's pages stay
// mapped to its idle slot (cached) and a later admission may reuse them in place
// (alloc_new_batch_idx picks the best-fitting idle slot whatever deferred_reclaim
// says). When the free pool cannot cover a need, idle slots' pages (then busy
// slots' spare pages) are unmapped at once (reclaim_kvblocks_on_demand). With
// deferred_reclaim that is all. Without it, OnIterationStart() also reclaims:
//  - overlap on: ONE page group of an idle slot per iteration, on the background
//    thread, and only in an iteration whose decode growth mapped nothing
//    (do_kvcache_memory_management -> do_reclaim_pages);
//  - overlap off: every idle slot's pages at once, synchronously (step_sync with
//    eager_reclaim).
// Simplifications: the repo reclaims from the highest-numbered idle slot and spares
// the lowest-numbered one (next_prefill_reqId, the slot it expects the next prefill
// to take); kvsim lets the iteration's admissions pick their slots first, then
// reclaims from the idle slot with the fewest pages (ties: the highest-numbered).
struct VAttentionKvConfig {
  int64_t page_bytes = 2 << 20;  // 64 KiB, 128 KiB, 256 KiB (uvm) or 2 MiB (stock)
  int64_t max_slots = 256;       // concurrent requests (virtual sub-buffers)
  bool overlap = true;           // map decode growth behind the previous iteration
  bool deferred_reclaim = true;  // idle slots' pages are unmapped only on demand
  double watermark = 0.01;       // fraction of page groups kept free at admission
  VmmBackend backend = VmmBackend::kStock;
  Nanos map_latency{650};                       // stock: cuMemMap, per page
  Nanos set_access_latency{22160};              // stock: cuMemSetAccess, per page
  Nanos unmap_latency{16140};                   // stock: cuMemUnmap, per page
  Nanos uvm_map_latency = kPaperUvmMapLatency;  // uvm: one map call, per page
  // kvsim's what-if, not a feature of vAttention (the paper, arXiv 2405.04437 /
  // ASPLOS'25, and its repo share no prefixes): a physical page group is mapped into
  // several requests' virtual K/V buffers, at page granularity. Each whole page group
  // of computed tokens is cached under its content key (ContentKey at the page's
  // end), and a request whose leading page groups have cached keys maps them into its
  // own buffers instead of computing them (another request's prefix, or its own
  // groups after a preemption). See vattention_manager.cc for the rules.
  bool prefix_caching = false;
};
// The vAttention manager; with config.prefix_caching, the prefix-sharing one.
std::unique_ptr<KvCacheManager> NewVAttentionKvManager(const KvGeometry& geometry,
                                                       const VAttentionKvConfig& config);

// The backend `kv_cache.vmm.backend: auto` stands for: uvm for pages below 2 MiB,
// stock otherwise (vAttention picks the same way, vattention/utils.h is_uvm_backend).
VmmBackend AutoVmmBackend(int64_t page_bytes);
// A page size as text: "64 KiB", "2 MiB", or "N bytes" when not a whole number of KiB;
// `space` between number and unit ("" for labels: "64KiB").
std::string PageSizeText(int64_t bytes, std::string_view space = " ");
// kv_cache.vmm.backend: auto (nullopt: AutoVmmBackend decides) or a backend.
inline constexpr auto kVmmBackendSettings = kVmmBackends.WithUnset("auto");

// A page size its backend cannot map: `key` is the kv_cache key to blame
// ("page_bytes" or "vmm.backend"), `what` says why and how to fix it.
struct VmmConfigError {
  std::string key;
  std::string what;
};
// nullopt when config.backend can map pages of config.page_bytes: stock, a multiple
// of 2 MiB; uvm, 64 KiB, 128 KiB or 256 KiB.
std::optional<VmmConfigError> CheckVmmBackend(const VAttentionKvConfig& config);

// One sentence for outputs when the VMM costs are not measured: the uvm backend
// charged at the paper's kPaperUvmMapLatency. Empty otherwise.
std::string VmmCostCaveat(const VAttentionKvConfig& config);

// Ceil(a / b) for positive b.
inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The precondition of KvCacheManager::Admit and CanAdmit: 1 <= tokens <= max_tokens <=
// max_model_len. Throws InvariantError otherwise (a scheduler bug, not a user error).
inline void CheckAdmission(const KvGeometry& geometry, int64_t tokens, int64_t max_tokens) {
  KVSIM_CHECK(tokens >= 1 && tokens <= max_tokens && max_tokens <= geometry.max_model_len,
              "admission outside [1, max_model_len]");
}

}  // namespace kvsim
