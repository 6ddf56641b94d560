// Pieces the contiguous-layout managers share (static_manager.cc; vAttention:
// vattention_manager.cc without prefix sharing, vattention_prefix_manager.h with it).
// Internal to sim/kvcache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/time.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

// Decode rounds of requests that grow inside room they already hold (a static
// reservation; the page groups a vAttention request already needs): the growth takes
// no memory and changes only tokens. A request's record has the `tokens` it holds;
// `room(record)` is how many tokens it can hold without taking more.

// KvCacheManager::CertainDecodeRounds of such growth: the least of `limit` and each
// request's room beyond tokens[i], at least 0. `find(id)` gives a request's record,
// nullptr when it is not admitted.
template <typename Find, typename Room>
int64_t RoundsInsideRoom(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                         int64_t limit, Find find, Room room) {
  KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
  int64_t rounds = limit;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto* r = find(ids[i]);
    KVSIM_CHECK(r != nullptr && r->tokens == tokens[i],
                "decode rounds for a request not holding the given tokens");
    rounds = std::min(rounds, room(*r) - tokens[i]);
  }
  return std::max<int64_t>(0, rounds);
}

// KvCacheManager::GrowDecodeRounds of such growth: each request of `ids` (holding
// tokens[i] tokens) grows by `rounds` tokens; each round adds one live token per
// request to `live_tokens`, and `usage_now()` after it is recorded in `usage`.
// `at(id)` gives an admitted request's record. REQUIRES: the rooms hold the rounds.
template <typename At, typename Room, typename UsageNow>
void GrowRoundsInsideRoom(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                          int64_t rounds, At at, Room room, int64_t& live_tokens,
                          UsageNow usage_now, std::vector<KvUsage>& usage) {
  KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
  for (size_t i = 0; i < ids.size(); ++i) {
    auto& r = at(ids[i]);
    KVSIM_CHECK(r.tokens == tokens[i] && tokens[i] + rounds <= room(r), "bad decode rounds");
    r.tokens += rounds;
  }
  const auto n = static_cast<int64_t>(ids.size());
  usage.clear();
  for (int64_t j = 1; j <= rounds; ++j) {
    live_tokens += n;
    usage.push_back(usage_now());
  }
}

// What both vAttention managers share: the page-group accounting (see the top of
// vattention_manager.cc), the watermark, the mapping costs of a step, and the
// answers that follow from the config alone.
class VAttentionManagerBase : public KvCacheManager {
 public:
  AttentionLayout layout() const final { return AttentionLayout::kContiguous; }
  int64_t page_bytes() const final { return config_.page_bytes; }
  std::optional<VmmBackend> vmm_backend() const final { return config_.backend; }

  int64_t MaxAdmissibleTokens() const final {
    if (config_.max_slots < 1) return 0;
    return (total_groups_ - watermark_groups_) * tokens_per_page_;
  }

  KvStepCost TakeStepCost() final { return std::exchange(cost_, KvStepCost{}); }

 protected:
  // REQUIRES: config checked as NewVAttentionKvManager checks it.
  VAttentionManagerBase(const KvGeometry& geometry, const VAttentionKvConfig& config)
      : geometry_(geometry),
        config_(config),
        tokens_per_page_(config.page_bytes / geometry.bytes_per_token_per_layer),
        group_bytes_(2 * geometry.num_layers * config.page_bytes),
        total_groups_(geometry.capacity_bytes / group_bytes_),
        watermark_groups_(
            static_cast<int64_t>(config.watermark * static_cast<double>(total_groups_))) {}

  // Whether the step has mapped, unmapped or charged anything since TakeStepCost.
  bool StepCostPending() const {
    return cost_.map_calls != 0 || cost_.unmap_calls != 0 || cost_.synchronous != Nanos(0) ||
           cost_.background != Nanos(0);
  }

  // Mapping `groups` page groups into one range: one call per page, cuMemMap +
  // cuMemSetAccess (stock) or one uvm map call.
  void ChargeMap(GrowthPhase phase, int64_t groups) {
    const int64_t calls = groups * 2 * geometry_.num_layers;
    cost_.map_calls += calls;
    Charge(phase, calls * (config_.backend == VmmBackend::kUvm
                               ? config_.uvm_map_latency
                               : config_.map_latency + config_.set_access_latency));
  }

  // Unmapping `groups` page groups from one range: one cuMemUnmap per page on stock;
  // uvm returns the pages to its pool without a driver call.
  void ChargeUnmap(GrowthPhase phase, int64_t groups) {
    if (config_.backend == VmmBackend::kUvm) return;
    const int64_t calls = groups * 2 * geometry_.num_layers;
    cost_.unmap_calls += calls;
    Charge(phase, calls * config_.unmap_latency);
  }

  // Decode growth overlaps the previous iteration (background); the rest is
  // synchronous.
  void Charge(GrowthPhase phase, Nanos t) {
    if (config_.overlap && phase == GrowthPhase::kDecode) {
      cost_.background += t;
    } else {
      cost_.synchronous += t;
    }
  }

  KvGeometry geometry_;
  VAttentionKvConfig config_;
  int64_t tokens_per_page_;   // tokens a page of page_bytes holds
  int64_t group_bytes_;       // one page in each of the 2 x layers K/V buffers
  int64_t total_groups_;      // page groups the capacity holds
  int64_t watermark_groups_;  // page groups kept free at admission
  KvStepCost cost_;           // since the last TakeStepCost
};

}  // namespace kvsim
