// Static reservation: each request reserves KV for its maximum length at admission.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/contiguous_internal.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {
namespace {

class StaticKvManager final : public KvCacheManager {
 public:
  StaticKvManager(const KvGeometry& geometry, const StaticKvConfig& config)
      : geometry_(geometry), config_(config) {}

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!requests_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    const int64_t reserved_tokens = config_.reserve == StaticKvConfig::Reserve::kMaxModelLen
                                        ? geometry_.max_model_len
                                        : max_tokens;
    const int64_t bytes = reserved_tokens * geometry_.bytes_per_token;
    if (allocated_bytes_ + bytes > geometry_.capacity_bytes) return false;
    requests_.emplace(id, Entry{reserved_tokens, tokens});
    allocated_bytes_ += bytes;
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    const int64_t reserved_tokens = config_.reserve == StaticKvConfig::Reserve::kMaxModelLen
                                        ? geometry_.max_model_len
                                        : max_tokens;
    return allocated_bytes_ + reserved_tokens * geometry_.bytes_per_token <=
           geometry_.capacity_bytes;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase) override {
    Entry* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "growing a request that was not admitted");
    Entry& e = *found;
    KVSIM_CHECK(tokens >= e.tokens, "growth must not shrink a request");
    if (tokens > e.reserved_tokens) return false;
    live_tokens_ += tokens - e.tokens;
    e.tokens = tokens;
    return true;
  }

  // Growth inside the reservation always succeeds and changes only live tokens.
  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override {
    return RoundsInsideRoom(
        ids, tokens, limit, [this](int64_t id) { return requests_.find(id); }, &Room);
  }

  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override {
    GrowRoundsInsideRoom(
        ids, tokens, rounds, [this](int64_t id) -> Entry& { return requests_.at(id); }, &Room,
        live_tokens_, [this] { return Usage(); }, usage);
  }

  void Release(int64_t id) override {
    const Entry* e = requests_.find(id);
    KVSIM_CHECK(e != nullptr, "releasing a request that was not admitted");
    allocated_bytes_ -= e->reserved_tokens * geometry_.bytes_per_token;
    live_tokens_ -= e->tokens;
    requests_.erase(id);
  }

  KvUsage Usage() const override {
    return {.capacity_bytes = geometry_.capacity_bytes,
            .allocated_bytes = allocated_bytes_,
            .live_bytes = live_tokens_ * geometry_.bytes_per_token,
            .cached_bytes = 0,
            .bytes_per_token = geometry_.bytes_per_token};
  }

  AttentionLayout layout() const override { return AttentionLayout::kContiguous; }

  int64_t MaxAdmissibleTokens() const override {
    const int64_t fit = geometry_.capacity_bytes / geometry_.bytes_per_token;
    // With max_model_len reservations, any request reserves max_model_len tokens.
    if (config_.reserve == StaticKvConfig::Reserve::kMaxModelLen && fit < geometry_.max_model_len)
      return 0;
    return fit;
  }

 private:
  struct Entry {
    int64_t reserved_tokens;
    int64_t tokens;
  };
  static int64_t Room(const Entry& e) { return e.reserved_tokens; }

  KvGeometry geometry_;
  StaticKvConfig config_;
  IdMap<Entry> requests_;
  int64_t allocated_bytes_ = 0;
  int64_t live_tokens_ = 0;
};

}  // namespace

std::unique_ptr<KvCacheManager> NewStaticKvManager(const KvGeometry& geometry,
                                                   const StaticKvConfig& config) {
  KVSIM_CHECK(geometry.bytes_per_token > 0 && geometry.max_model_len > 0, "bad KV geometry");
  return std::make_unique<StaticKvManager>(geometry, config);
}

}  // namespace kvsim
