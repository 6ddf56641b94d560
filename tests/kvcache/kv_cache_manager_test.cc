// Conformance suite run against every KV-cache manager (static reservation,
// PagedAttention, vAttention in each of its modes), plus the boundaries and
// admission rules of each manager worked out by hand.
//
// Hand-made geometry used throughout: 4 layers, ONE of K or V of one token in one
// layer = 2048 bytes (8 KV heads x 128 x 2 bytes), so one token of K and V in every
// layer = 2 x 4 x 2048 = 16384 bytes (16 KiB).
#include "sim/kvcache/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

constexpr int64_t kLayers = 4;
constexpr int64_t kBytesPerTokenPerLayer = 2048;                          // 8 x 128 x 2
constexpr int64_t kBytesPerToken = 2 * kLayers * kBytesPerTokenPerLayer;  // 16384
constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * 1024;

// Mapping latencies chosen to be easy to add up: stock map + set access = 21 us per
// page, unmap 15 us; uvm (the 64 KiB cases) 9 us per page, unmapping free.
constexpr Nanos kMapLatency{1'000};
constexpr Nanos kSetAccessLatency{20'000};
constexpr Nanos kUnmapLatency{15'000};
constexpr Nanos kUvmMapLatency{9'000};

// Watermark of the paged and vAttention cases of the suite: 0.06 of 40 blocks is
// 2.4 -> 2 blocks; of 20 blocks or page groups, 1.2 -> 1.
constexpr double kSuiteWatermark = 0.06;

KvGeometry Geometry(int64_t capacity_tokens, int64_t max_model_len) {
  KvGeometry g;
  g.capacity_bytes = capacity_tokens * kBytesPerToken;
  g.bytes_per_token = kBytesPerToken;
  g.bytes_per_token_per_layer = kBytesPerTokenPerLayer;
  g.num_layers = kLayers;
  g.max_model_len = max_model_len;
  return g;
}

// (capacity, allocated, live, cached) bytes.
std::tuple<int64_t, int64_t, int64_t, int64_t> Fields(const KvUsage& u) {
  return {u.capacity_bytes, u.allocated_bytes, u.live_bytes, u.cached_bytes};
}

std::tuple<int64_t, int64_t, int64_t, int64_t> Fields(const KvStepCost& c) {
  return {c.synchronous.count(), c.background.count(), c.map_calls, c.unmap_calls};
}

// One manager configuration of the conformance suite.
struct KvCase {
  std::string name;
  KvManagerType type = KvManagerType::kStatic;
  StaticKvConfig::Reserve reserve = StaticKvConfig::Reserve::kMaxModelLen;
  int64_t block_tokens = 0;  // paged
  int64_t page_bytes = 0;    // vAttention
  bool overlap = false;
  bool deferred_reclaim = false;
  bool prefix_caching = false;  // paged and vAttention
  int64_t max_slots = 0;
  // Token lengths of the suite are multiplied by this: with 2 MiB pages a page holds
  // 2 MiB / 2048 = 1024 tokens (32 x the 32 tokens of a 64 KiB page), so every
  // length is scaled by 32 to keep the same number of pages in play.
  int64_t token_scale = 1;
};

void PrintTo(const KvCase& c, std::ostream* os) { *os << c.name; }

std::unique_ptr<KvCacheManager> Make(const KvCase& c, const KvGeometry& g) {
  switch (c.type) {
    case KvManagerType::kStatic: {
      StaticKvConfig config;
      config.reserve = c.reserve;
      return NewStaticKvManager(g, config);
    }
    case KvManagerType::kPaged: {
      PagedKvConfig config;
      config.block_tokens = c.block_tokens;
      config.watermark = kSuiteWatermark;
      config.prefix_caching = c.prefix_caching;
      return NewPagedKvManager(g, config);
    }
    case KvManagerType::kVAttention: {
      VAttentionKvConfig config;
      config.prefix_caching = c.prefix_caching;
      config.page_bytes = c.page_bytes;
      config.backend = AutoVmmBackend(c.page_bytes);  // 64 KiB: uvm; 2 MiB: stock
      config.max_slots = c.max_slots;
      config.overlap = c.overlap;
      config.deferred_reclaim = c.deferred_reclaim;
      config.watermark = kSuiteWatermark;
      config.map_latency = kMapLatency;
      config.set_access_latency = kSetAccessLatency;
      config.unmap_latency = kUnmapLatency;
      config.uvm_map_latency = kUvmMapLatency;
      return NewVAttentionKvManager(g, config);
    }
  }
  return nullptr;
}

// What each manager is expected to set aside, worked out from its definition.
struct Expected {
  const KvCase& c;
  const KvGeometry& g;

  // Tokens and bytes of one allocation unit: a token's reservation, a block, a page
  // group (one page in each of the 2 x layers K/V buffers).
  int64_t UnitTokens() const {
    switch (c.type) {
      case KvManagerType::kStatic:
        return 1;
      case KvManagerType::kPaged:
        return c.block_tokens;
      case KvManagerType::kVAttention:
        return c.page_bytes / g.bytes_per_token_per_layer;
    }
    return 0;
  }
  int64_t UnitBytes() const {
    if (c.type == KvManagerType::kVAttention) return 2 * g.num_layers * c.page_bytes;
    return UnitTokens() * g.bytes_per_token;
  }
  // Bytes held for a request of `tokens` tokens now, `max_tokens` over its life.
  int64_t BytesFor(int64_t tokens, int64_t max_tokens) const {
    if (c.type == KvManagerType::kStatic) {
      return (c.reserve == StaticKvConfig::Reserve::kMaxModelLen ? g.max_model_len : max_tokens) *
             g.bytes_per_token;
    }
    return CeilDiv(tokens, UnitTokens()) * UnitBytes();
  }
  int64_t Units() const { return g.capacity_bytes / UnitBytes(); }
  int64_t UsableBytes() const { return Units() * UnitBytes(); }
  // Kept free at admission: floor(watermark x units) whole units.
  int64_t AdmissionHeadroomBytes() const {
    if (c.type == KvManagerType::kStatic) return 0;
    return static_cast<int64_t>(kSuiteWatermark * static_cast<double>(Units())) * UnitBytes();
  }
  int64_t MaxRequests() const {
    return c.type == KvManagerType::kVAttention ? c.max_slots : std::numeric_limits<int64_t>::max();
  }
  // vAttention keeps finished requests' pages mapped to their idle slots (cached)
  // until they are reclaimed, and a request that reuses such a slot holds all of the
  // slot's pages, so what is mapped is at least, not exactly, what the live
  // requests need. Only without deferred reclamation and without overlap does every
  // iteration unmap all idle slots' pages (so no admission finds any to reuse).
  // Every other manager caches nothing.
  bool AllocationIsExact() const {
    return !(c.type == KvManagerType::kVAttention && (c.deferred_reclaim || c.overlap));
  }
  bool Uvm() const {
    return c.type == KvManagerType::kVAttention && AutoVmmBackend(c.page_bytes) == VmmBackend::kUvm;
  }
};

enum class Op { kAdmit, kGrow, kRelease };

struct Request {
  int64_t tokens = 0;
  int64_t max_tokens = 0;
};

// One operation of the random sequence and what it did.
struct OpRecord {
  Op op = Op::kAdmit;
  int64_t id = 0;
  int64_t tokens = 0;      // Admit: initial tokens; Grow: new total; Release: tokens held
  int64_t old_tokens = 0;  // Grow: tokens before
  int64_t max_tokens = 0;
  bool accepted = true;  // Release is always accepted
  bool predicted = true;
  bool can_admit = true;      // Admit: CanAdmit asked just before
  KvUsage after_can_admit;    // Admit: usage right after CanAdmit
  KvStepCost can_admit_cost;  // Admit: step cost CanAdmit charged
  KvUsage before, after;
  KvStepCost cost;
  // The iteration's upkeep (OnIterationStart) run after the operation, and after it.
  KvUsage upkept;
  KvStepCost upkeep_cost;
  // The same operation replayed on a shadow manager that never saw a refused call
  // (its upkeep runs after every operation too).
  bool shadow_accepted = true;
  KvUsage shadow_after;
  KvStepCost shadow_cost;
  KvUsage shadow_upkept;
  KvStepCost shadow_upkeep_cost;
  // The model's view after the operation.
  int64_t model_live_bytes = 0;
  int64_t model_needed_bytes = 0;
};

// Drives a manager (and a shadow twin) through a deterministic pseudo-random
// sequence of Admit/Grow/Release calls, keeping a model of the live requests.
class RandomDriver {
 public:
  RandomDriver(const KvCase& c, const KvGeometry& g)
      : c_(c), g_(g), expected_{c_, g_}, manager_(Make(c, g)), shadow_(Make(c, g)) {}

  void Run(int ops, uint64_t seed, const std::function<void(const OpRecord&)>& check) {
    std::mt19937_64 rng(seed);
    auto uniform = [&rng](int64_t lo, int64_t hi) {
      return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
    };
    const int64_t mml = g_.max_model_len;
    for (int i = 0; i < ops; ++i) {
      // Alternate filling phases (admissions dominate) and draining phases.
      const bool filling = (i / 400) % 2 == 0;
      const int64_t r = uniform(0, 99);
      OpRecord rec;
      if (ids_.empty() || r < (filling ? 40 : 15)) {
        rec.op = Op::kAdmit;
        rec.id = next_id_++;
        rec.tokens = uniform(1, mml / 2);
        rec.max_tokens = uniform(rec.tokens, mml);
      } else if (r < (filling ? 90 : 60)) {
        rec.op = Op::kGrow;
        rec.id = ids_[static_cast<size_t>(uniform(0, static_cast<int64_t>(ids_.size()) - 1))];
        const Request& q = requests_.at(rec.id);
        rec.old_tokens = q.tokens;
        rec.max_tokens = q.max_tokens;
        const bool decode = uniform(0, 9) < 7;
        rec.tokens = std::min(q.max_tokens, q.tokens + (decode ? 1 : uniform(1, mml / 8)));
        phase_ = decode ? GrowthPhase::kDecode : GrowthPhase::kPrefill;
      } else {
        rec.op = Op::kRelease;
        rec.id = ids_[static_cast<size_t>(uniform(0, static_cast<int64_t>(ids_.size()) - 1))];
      }
      Apply(rec);
      check(rec);
      if (::testing::Test::HasFatalFailure()) return;  // report the first failure only
    }
  }

  // Releases every live request, checking each release with `check`.
  void ReleaseAll(const std::function<void(const OpRecord&)>& check) {
    while (!ids_.empty()) {
      OpRecord rec;
      rec.op = Op::kRelease;
      rec.id = ids_.back();
      Apply(rec);
      check(rec);
      if (::testing::Test::HasFatalFailure()) return;  // report the first failure only
    }
  }

  KvCacheManager& manager() { return *manager_; }
  const std::map<int64_t, Request>& requests() const { return requests_; }
  // Final lengths of every released request.
  const std::vector<Request>& released() const { return released_; }

 private:
  void Apply(OpRecord& rec) {
    if (rec.op == Op::kRelease) {
      const Request& q = requests_.at(rec.id);
      rec.tokens = q.tokens;
      rec.max_tokens = q.max_tokens;
    }
    rec.before = manager_->Usage();
    rec.predicted = Predict(rec);
    if (rec.op == Op::kAdmit) {
      rec.can_admit = manager_->CanAdmit(rec.id, rec.tokens, rec.max_tokens);
      rec.after_can_admit = manager_->Usage();
      rec.can_admit_cost = manager_->TakeStepCost();
    }
    rec.accepted = Perform(*manager_, rec);
    rec.after = manager_->Usage();
    rec.cost = manager_->TakeStepCost();
    if (rec.accepted) {
      rec.shadow_accepted = Perform(*shadow_, rec);
      UpdateModel(rec);
    }
    rec.shadow_after = shadow_->Usage();
    rec.shadow_cost = shadow_->TakeStepCost();
    // Each operation stands for one iteration: its upkeep follows.
    manager_->OnIterationStart();
    rec.upkept = manager_->Usage();
    rec.upkeep_cost = manager_->TakeStepCost();
    shadow_->OnIterationStart();
    rec.shadow_upkept = shadow_->Usage();
    rec.shadow_upkeep_cost = shadow_->TakeStepCost();
    rec.model_live_bytes = live_tokens_ * g_.bytes_per_token;
    rec.model_needed_bytes = needed_bytes_;
  }

  // Calls `rec`'s operation on `manager`; whether it was accepted (a release always is).
  bool Perform(KvCacheManager& manager, const OpRecord& rec) const {
    switch (rec.op) {
      case Op::kAdmit:
        return manager.Admit(rec.id, rec.tokens, rec.max_tokens);
      case Op::kGrow:
        return manager.Grow(rec.id, rec.tokens, phase_);
      case Op::kRelease:
        manager.Release(rec.id);
        break;
    }
    return true;
  }

  // Whether the operation fits, by each manager's rule: admission must leave the
  // watermark free and find a free slot; growth may use the whole pool.
  bool Predict(const OpRecord& rec) const {
    switch (rec.op) {
      case Op::kAdmit:
        return static_cast<int64_t>(ids_.size()) < expected_.MaxRequests() &&
               needed_bytes_ + expected_.BytesFor(rec.tokens, rec.max_tokens) +
                       expected_.AdmissionHeadroomBytes() <=
                   expected_.UsableBytes();
      case Op::kGrow:
        return needed_bytes_ - expected_.BytesFor(rec.old_tokens, rec.max_tokens) +
                   expected_.BytesFor(rec.tokens, rec.max_tokens) <=
               expected_.UsableBytes();
      case Op::kRelease:
        return true;
    }
    return true;
  }

  void UpdateModel(const OpRecord& rec) {
    switch (rec.op) {
      case Op::kAdmit:
        requests_[rec.id] = Request{rec.tokens, rec.max_tokens};
        ids_.push_back(rec.id);
        live_tokens_ += rec.tokens;
        needed_bytes_ += expected_.BytesFor(rec.tokens, rec.max_tokens);
        break;
      case Op::kGrow: {
        Request& q = requests_.at(rec.id);
        live_tokens_ += rec.tokens - q.tokens;
        needed_bytes_ += expected_.BytesFor(rec.tokens, q.max_tokens) -
                         expected_.BytesFor(q.tokens, q.max_tokens);
        q.tokens = rec.tokens;
        break;
      }
      case Op::kRelease: {
        const Request q = requests_.at(rec.id);
        live_tokens_ -= q.tokens;
        needed_bytes_ -= expected_.BytesFor(q.tokens, q.max_tokens);
        released_.push_back(q);
        requests_.erase(rec.id);
        ids_.erase(std::find(ids_.begin(), ids_.end(), rec.id));
        break;
      }
    }
  }

  KvCase c_;
  KvGeometry g_;
  Expected expected_;
  std::unique_ptr<KvCacheManager> manager_;
  std::unique_ptr<KvCacheManager> shadow_;
  std::map<int64_t, Request> requests_;
  std::vector<int64_t> ids_;
  std::vector<Request> released_;
  int64_t next_id_ = 1;
  int64_t live_tokens_ = 0;
  int64_t needed_bytes_ = 0;
  GrowthPhase phase_ = GrowthPhase::kDecode;
};

constexpr int kOps = 4000;
constexpr uint64_t kSeed = 20240507;

class KvManagerConformance : public ::testing::TestWithParam<KvCase> {
 protected:
  // 640 tokens of capacity (2.5 requests of max_model_len), max_model_len 256,
  // both scaled for 2 MiB pages. Static: 2 reservations of 256 tokens fit. Paged
  // blocks of 16: 40 blocks; of 32: 20 blocks. vAttention: 640 x 16 KiB / (2 x 4 x
  // 64 KiB) = 20 page groups.
  KvGeometry SuiteGeometry() const {
    const int64_t s = GetParam().token_scale;
    return Geometry(640 * s, 256 * s);
  }
};

TEST_P(KvManagerConformance, StartsEmptyWithTheConfiguredCapacity) {
  const KvGeometry g = SuiteGeometry();
  auto m = Make(GetParam(), g);
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(g.capacity_bytes, int64_t{0}, int64_t{0}, int64_t{0}));
  EXPECT_EQ(Fields(m->TakeStepCost()), std::make_tuple(0, 0, 0, 0));
}

TEST_P(KvManagerConformance, ReportsTheAttentionLayoutOfItsKernels) {
  const KvCase& c = GetParam();
  auto m = Make(c, SuiteGeometry());
  switch (c.type) {
    case KvManagerType::kStatic:
      EXPECT_EQ(m->layout(), AttentionLayout::kContiguous);
      EXPECT_EQ(m->block_tokens(), 0);
      EXPECT_EQ(m->page_bytes(), 0);
      break;
    case KvManagerType::kPaged:
      EXPECT_EQ(m->layout(), AttentionLayout::kPaged);
      EXPECT_EQ(m->block_tokens(), c.block_tokens);
      EXPECT_EQ(m->page_bytes(), 0);
      break;
    case KvManagerType::kVAttention:
      EXPECT_EQ(m->layout(), AttentionLayout::kContiguous);
      EXPECT_EQ(m->block_tokens(), 0);
      EXPECT_EQ(m->page_bytes(), c.page_bytes);
      break;
  }
}

TEST_P(KvManagerConformance, KeepsLiveWithinAllocatedWithinCapacityAfterEveryOperation) {
  const KvCase& c = GetParam();
  const KvGeometry g = SuiteGeometry();
  const Expected e{GetParam(), g};
  RandomDriver driver(GetParam(), g);
  int64_t refused = 0;
  auto check = [&](const OpRecord& r) {
    refused += r.accepted ? 0 : 1;
    for (const KvUsage& u : {r.after, r.upkept}) {  // after the op, after the upkeep
      ASSERT_EQ(u.capacity_bytes, g.capacity_bytes) << "op on request " << r.id;
      ASSERT_GE(u.live_bytes, 0);
      ASSERT_LE(u.live_bytes, u.allocated_bytes) << "op on request " << r.id;
      ASSERT_GE(u.cached_bytes, 0) << "op on request " << r.id;
      ASSERT_LE(u.allocated_bytes + u.cached_bytes, u.capacity_bytes) << "op on request " << r.id;
      // Live bytes are exactly the tokens held: 16 KiB per token.
      ASSERT_EQ(u.live_bytes, r.model_live_bytes) << "op on request " << r.id;
      if (e.AllocationIsExact()) {
        ASSERT_EQ(u.allocated_bytes, r.model_needed_bytes) << "op on request " << r.id;
      } else {
        ASSERT_GE(u.allocated_bytes, r.model_needed_bytes) << "op on request " << r.id;
      }
    }
    // The upkeep never touches what requests hold.
    ASSERT_EQ(r.upkept.allocated_bytes, r.after.allocated_bytes) << "op on request " << r.id;
    // Exact managers keep nothing once released, unless prefix caching keeps the
    // released blocks' content (until they are taken again).
    if (e.AllocationIsExact() && !c.prefix_caching) {
      ASSERT_EQ(r.upkept.cached_bytes, 0) << "op on request " << r.id;
    }
  };
  driver.Run(kOps, kSeed, check);
  driver.ReleaseAll(check);
  // The sequence must reach the full cache, or it proves little.
  EXPECT_GT(refused, 0);
}

// An admission fits when what the live requests need, plus the newcomer, plus the
// watermark fit in the whole units of the capacity (and a slot is free); a growth
// when the live requests' needs fit. For vAttention, pages mapped to a slot but not
// needed by its request count as free: they are handed over on demand.
TEST_P(KvManagerConformance, AcceptsAnOperationExactlyWhenItFits) {
  const KvGeometry g = SuiteGeometry();
  RandomDriver driver(GetParam(), g);
  int64_t accepted = 0, refused = 0;
  driver.Run(kOps, kSeed, [&](const OpRecord& r) {
    if (r.op == Op::kRelease) return;
    (r.accepted ? accepted : refused) += 1;
    if (r.op == Op::kAdmit) {
      ASSERT_EQ(r.accepted, r.predicted)
          << "Admit of request " << r.id << " with " << r.tokens << " tokens (max " << r.max_tokens
          << "); live requests need " << r.model_needed_bytes << " of " << r.before.capacity_bytes
          << " bytes, " << r.before.allocated_bytes << " allocated";
    } else {
      ASSERT_EQ(r.accepted, r.predicted)
          << "Grow of request " << r.id << " from " << r.old_tokens << " to " << r.tokens
          << " tokens; live requests need " << r.model_needed_bytes << " of "
          << r.before.capacity_bytes << " bytes, " << r.before.allocated_bytes << " allocated";
    }
  });
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

TEST_P(KvManagerConformance, CanAdmitForetellsAdmitAndChangesNothing) {
  const KvGeometry g = SuiteGeometry();
  RandomDriver driver(GetParam(), g);
  int64_t yes = 0, no = 0;
  driver.Run(kOps, kSeed, [&](const OpRecord& r) {
    if (r.op != Op::kAdmit) return;
    (r.can_admit ? yes : no) += 1;
    ASSERT_EQ(r.can_admit, r.accepted)
        << "request " << r.id << " with " << r.tokens << " tokens (max " << r.max_tokens << ")";
    EXPECT_EQ(r.after_can_admit.allocated_bytes, r.before.allocated_bytes);
    EXPECT_EQ(r.after_can_admit.cached_bytes, r.before.cached_bytes);
    EXPECT_EQ(r.after_can_admit.live_bytes, r.before.live_bytes);
    EXPECT_EQ(r.can_admit_cost.synchronous + r.can_admit_cost.background, Nanos(0));
    EXPECT_EQ(r.can_admit_cost.map_calls + r.can_admit_cost.unmap_calls, 0);
  });
  EXPECT_GT(yes, 0);
  EXPECT_GT(no, 0);
}

TEST_P(KvManagerConformance, RefusedOperationsChangeNothing) {
  const KvGeometry g = SuiteGeometry();
  RandomDriver driver(GetParam(), g);
  int64_t refused = 0;
  driver.Run(kOps, kSeed, [&](const OpRecord& r) {
    if (!r.accepted) {
      ++refused;
      ASSERT_EQ(Fields(r.after), Fields(r.before)) << "refused op on request " << r.id;
      ASSERT_EQ(Fields(r.cost), std::make_tuple(0, 0, 0, 0)) << "refused op on request " << r.id;
    } else {
      ASSERT_TRUE(r.shadow_accepted) << "op on request " << r.id;
      ASSERT_EQ(Fields(r.shadow_cost), Fields(r.cost)) << "op on request " << r.id;
    }
    // The shadow never saw the refused calls: any trace they left would show here
    // or in a later operation.
    ASSERT_EQ(Fields(r.shadow_after), Fields(r.after)) << "op on request " << r.id;
    ASSERT_EQ(Fields(r.shadow_upkept), Fields(r.upkept)) << "op on request " << r.id;
    ASSERT_EQ(Fields(r.shadow_upkeep_cost), Fields(r.upkeep_cost)) << "op on request " << r.id;
  });
  EXPECT_GT(refused, 0);
}

TEST_P(KvManagerConformance, ChargesMappingTimeForExactlyTheCallsItCounts) {
  const KvCase& c = GetParam();
  const KvGeometry g = SuiteGeometry();
  const Expected e{c, g};
  RandomDriver driver(c, g);
  int64_t map_calls = 0;
  // `k` moved the mapped bytes (allocated + cached) from `before` to `after`.
  auto check_cost = [&](const OpRecord& r, const KvStepCost& k, const KvUsage& before,
                        const KvUsage& after) {
    ASSERT_GE(k.map_calls, 0);
    ASSERT_GE(k.unmap_calls, 0);
    // Each call costs its latency: stock, map + set access per mapped page and unmap
    // per unmapped page; uvm, one map call per mapped page and unmapping is free.
    // Whether it is hidden or exposed does not change the sum.
    const Nanos map_cost = e.Uvm() ? kUvmMapLatency : kMapLatency + kSetAccessLatency;
    ASSERT_EQ((k.synchronous + k.background).count(),
              (k.map_calls * map_cost + k.unmap_calls * kUnmapLatency).count());
    if (c.type != KvManagerType::kVAttention) {
      ASSERT_EQ(Fields(k), std::make_tuple(0, 0, 0, 0));
      return;
    }
    // Pages come in groups: one per K/V buffer, 2 x 4 layers = 8 per group.
    ASSERT_EQ(k.map_calls % (2 * kLayers), 0);
    ASSERT_EQ(k.unmap_calls % (2 * kLayers), 0);
    const int64_t mapped_change = (after.allocated_bytes + after.cached_bytes) -
                                  (before.allocated_bytes + before.cached_bytes);
    if (e.Uvm()) {
      // No unmap call; the mapped bytes grow by one page per map call at most.
      ASSERT_EQ(k.unmap_calls, 0) << "op on request " << r.id;
      ASSERT_LE(mapped_change, k.map_calls * c.page_bytes) << "op on request " << r.id;
    } else if (c.prefix_caching) {
      // Cached content is held mapped or not: unmapping a cached group from a slot
      // keeps its bytes, mapping it into a second range adds none. The held bytes
      // still move by at most one page per call.
      ASSERT_LE(mapped_change, k.map_calls * c.page_bytes) << "op on request " << r.id;
      ASSERT_GE(mapped_change, -k.unmap_calls * c.page_bytes) << "op on request " << r.id;
    } else {
      // The mapped bytes move by one page per call.
      ASSERT_EQ(mapped_change, (k.map_calls - k.unmap_calls) * c.page_bytes)
          << "op on request " << r.id;
    }
    // Without overlap nothing can hide behind an iteration.
    if (!c.overlap) {
      ASSERT_EQ(k.background.count(), 0);
    }
  };
  auto check = [&](const OpRecord& r) {
    map_calls += r.cost.map_calls;
    check_cost(r, r.cost, r.before, r.after);
    if (::testing::Test::HasFatalFailure()) return;
    check_cost(r, r.upkeep_cost, r.after, r.upkept);
    if (::testing::Test::HasFatalFailure() || c.type != KvManagerType::kVAttention) return;
    if (r.op == Op::kRelease) {
      // A release unmaps nothing itself: the slot's pages, at least the request's,
      // move from allocated to cached, all of them.
      const int64_t freed = r.before.allocated_bytes - r.after.allocated_bytes;
      ASSERT_EQ(Fields(r.cost), Fields(KvStepCost{})) << "release of request " << r.id;
      ASSERT_GE(freed, e.BytesFor(r.tokens, r.max_tokens)) << "release of request " << r.id;
      ASSERT_EQ(r.after.cached_bytes - r.before.cached_bytes, freed)
          << "release of request " << r.id;
    }
    // Admission maps the prompt synchronously.
    if (r.op == Op::kAdmit) {
      ASSERT_EQ(r.cost.background.count(), 0);
    }
    // The upkeep maps nothing and unmaps only cached pages: with deferred
    // reclamation none; with overlap at most one page group, in the background;
    // otherwise every idle slot's, synchronously.
    const int64_t unmapped = r.after.cached_bytes - r.upkept.cached_bytes;
    const int64_t group_bytes = e.UnitBytes();
    ASSERT_EQ(r.upkeep_cost.map_calls, 0) << "op on request " << r.id;
    if (c.deferred_reclaim) {
      ASSERT_EQ(Fields(r.upkeep_cost), Fields(KvStepCost{})) << "op on request " << r.id;
      ASSERT_EQ(unmapped, 0) << "op on request " << r.id;
    } else if (c.overlap) {
      ASSERT_TRUE(unmapped == 0 || unmapped == group_bytes) << "op on request " << r.id;
      ASSERT_EQ(r.upkeep_cost.synchronous.count(), 0) << "op on request " << r.id;
    } else if (c.prefix_caching) {
      // Idle slots' spare pages only: cached content stays for the cache.
      ASSERT_GE(unmapped, 0) << "op on request " << r.id;
      ASSERT_EQ(r.upkeep_cost.background.count(), 0) << "op on request " << r.id;
    } else {
      ASSERT_EQ(r.upkept.cached_bytes, 0) << "op on request " << r.id;
    }
  };
  driver.Run(kOps, kSeed, check);
  driver.ReleaseAll(check);
  if (c.type == KvManagerType::kVAttention) {
    EXPECT_GT(map_calls, 0);
  }
}

TEST_P(KvManagerConformance, ReleasingEverythingLeavesOnlyWhatTheManagerKeepsByDesign) {
  const KvCase& c = GetParam();
  const KvGeometry g = SuiteGeometry();
  const Expected e{c, g};
  RandomDriver driver(c, g);
  driver.Run(kOps, kSeed, [](const OpRecord&) {});
  ASSERT_FALSE(driver.requests().empty());
  const KvUsage before = driver.manager().Usage();
  ASSERT_GT(before.allocated_bytes, 0);
  // Everything mapped: to busy slots (allocated) and to idle slots (cached).
  const int64_t mapped_before = before.allocated_bytes + before.cached_bytes;
  const size_t released_before = driver.released().size();

  // Bytes the iterations' upkeep unmapped while the requests were released.
  int64_t reclaimed = 0;
  driver.ReleaseAll(
      [&](const OpRecord& r) { reclaimed += r.after.cached_bytes - r.upkept.cached_bytes; });
  const KvUsage empty = driver.manager().Usage();
  EXPECT_EQ(empty.live_bytes, 0);
  EXPECT_EQ(empty.allocated_bytes, 0);
  if (c.prefix_caching) {
    // Every released block keeps its content until a later allocation takes it.
    EXPECT_GT(empty.cached_bytes, 0);
    EXPECT_LE(empty.cached_bytes, g.capacity_bytes);
  } else if (e.AllocationIsExact()) {
    EXPECT_EQ(empty.cached_bytes, 0);
  } else {
    // The pages stay mapped to the now idle slots and are cached, all of them but
    // those reclaimed meanwhile (one group per iteration at most without deferred
    // reclamation; none with it).
    EXPECT_EQ(empty.cached_bytes, mapped_before - reclaimed);
    if (c.deferred_reclaim) {
      EXPECT_EQ(reclaimed, 0);
    }
  }

  // Re-admit the longest of the requests just released, at its final length.
  Request longest;
  for (size_t i = released_before; i < driver.released().size(); ++i) {
    const Request& q = driver.released()[i];
    if (e.BytesFor(q.tokens, q.max_tokens) > e.BytesFor(longest.tokens, longest.max_tokens) ||
        longest.tokens == 0) {
      longest = q;
    }
  }
  ASSERT_TRUE(driver.manager().Admit(1'000'000, longest.tokens, longest.max_tokens));
  const KvUsage again = driver.manager().Usage();
  const KvStepCost cost = driver.manager().TakeStepCost();
  EXPECT_EQ(again.live_bytes, longest.tokens * kBytesPerToken);
  if (e.AllocationIsExact()) {
    EXPECT_EQ(again.allocated_bytes, e.BytesFor(longest.tokens, longest.max_tokens));
    // A new request evicts the oldest released blocks, at most as many as it takes.
    EXPECT_GE(again.cached_bytes,
              c.prefix_caching ? empty.cached_bytes - again.allocated_bytes : 0);
    EXPECT_LE(again.cached_bytes, c.prefix_caching ? empty.cached_bytes : 0);
  } else if (c.prefix_caching) {
    // vAttention's cache: a new content takes an idle slot mapping no cached page
    // group (or the one released longest ago) and maps at most its own groups; it
    // evicts cached groups, at most as many as it takes.
    EXPECT_EQ(again.allocated_bytes, e.BytesFor(longest.tokens, longest.max_tokens));
    EXPECT_LE(cost.map_calls * c.page_bytes, again.allocated_bytes);
    EXPECT_GE(again.cached_bytes, empty.cached_bytes - again.allocated_bytes);
    EXPECT_LE(again.cached_bytes, empty.cached_bytes);
  } else if (!c.deferred_reclaim) {
    // Its old slot may have lost pages to the per-iteration reclamation: whatever
    // is missing is mapped again.
    EXPECT_GE(again.allocated_bytes, e.BytesFor(longest.tokens, longest.max_tokens));
    EXPECT_EQ(cost.background.count(), 0);
  } else {
    // Its slot (the idle slot whose pages cover it most tightly; its own old slot
    // covers it) needs no new mapping: the slot's pages, at least the request's,
    // move from cached to allocated and nothing more is mapped.
    EXPECT_EQ(cost.map_calls, 0);
    EXPECT_EQ(cost.unmap_calls, 0);
    EXPECT_EQ(cost.synchronous.count(), 0);
    EXPECT_GE(again.allocated_bytes, e.BytesFor(longest.tokens, longest.max_tokens));
    EXPECT_EQ(again.allocated_bytes + again.cached_bytes, mapped_before);
  }
}

TEST_P(KvManagerConformance, MaxAdmissibleTokensFitAnEmptyManagerAndOneMoreDoesNot) {
  const KvCase& c = GetParam();
  const int64_t s = c.token_scale;
  // The suite geometry (capacity above max_model_len) and a tight one: 200 tokens of
  // capacity for a max_model_len of 256.
  for (const KvGeometry& g : {SuiteGeometry(), Geometry(200 * s, 256 * s)}) {
    SCOPED_TRACE(testing::Message() << "capacity " << g.capacity_bytes / kBytesPerToken
                                    << " tokens, max_model_len " << g.max_model_len);
    const int64_t max = Make(c, g)->MaxAdmissibleTokens();
    if (max == 0) {
      EXPECT_FALSE(Make(c, g)->Admit(1, 1, 1));
      continue;
    }
    const int64_t fits = std::min(max, g.max_model_len);
    EXPECT_TRUE(Make(c, g)->Admit(1, fits, fits)) << fits << " tokens";
    if (max < g.max_model_len) {
      EXPECT_FALSE(Make(c, g)->Admit(1, max + 1, max + 1)) << max + 1 << " tokens";
    }
  }
}

TEST_P(KvManagerConformance, MaxAdmissibleTokensOfATightCacheIsWorkedOutByHand) {
  const KvCase& c = GetParam();
  const int64_t s = c.token_scale;
  const KvGeometry g = Geometry(200 * s, 256 * s);
  int64_t expected = 0;
  switch (c.type) {
    case KvManagerType::kStatic:
      // 200 tokens of capacity: a 256-token reservation never fits; a request's own
      // maximum fits up to 200 tokens.
      expected = c.reserve == StaticKvConfig::Reserve::kMaxModelLen ? 0 : 200;
      break;
    case KvManagerType::kPaged:
      // 200 / 16 = 12 blocks (watermark 0.72 -> 0): 192 tokens;
      // 200 / 32 = 6 blocks (watermark 0.36 -> 0): 192 tokens.
      expected = 192;
      break;
    case KvManagerType::kVAttention:
      // 200 x 16 KiB / 512 KiB = 6 groups of 32 tokens (watermark 0.36 -> 0): 192,
      // scaled by 32 for 2 MiB pages.
      expected = 192 * s;
      break;
  }
  EXPECT_EQ(Make(c, g)->MaxAdmissibleTokens(), expected);
}

TEST_P(KvManagerConformance, GrowingToTheCurrentLengthSucceedsEvenWhenFull) {
  const KvCase& c = GetParam();
  const KvGeometry g = SuiteGeometry();
  auto m = Make(c, g);
  // Fill with requests of half of max_model_len until one is refused.
  const int64_t half = g.max_model_len / 2;
  int64_t id = 0;
  while (m->Admit(id + 1, half, g.max_model_len)) ++id;
  ASSERT_GE(id, 1);
  const KvUsage before = m->Usage();
  m->TakeStepCost();
  for (int64_t r = 1; r <= id; ++r) EXPECT_TRUE(m->Grow(r, half, GrowthPhase::kDecode));
  EXPECT_EQ(Fields(m->Usage()), Fields(before));
  EXPECT_EQ(Fields(m->TakeStepCost()), std::make_tuple(0, 0, 0, 0));
}

// Skip-ahead's contract: the rounds CertainDecodeRounds promises, applied at once by
// GrowDecodeRounds, leave the manager exactly where the Grow calls, OnIterationStart
// and TakeStepCost of stepping would, Usage() after every round included, at no cost.
TEST_P(KvManagerConformance, PromisedDecodeRoundsMatchTheGrowCallsTheyStandFor) {
  const KvCase& c = GetParam();
  const KvGeometry g = SuiteGeometry();
  std::mt19937_64 rng(kSeed);
  int promised_somewhere = 0;
  for (int trial = 0; trial < 200; ++trial) {
    auto bulk = Make(c, g), stepped = Make(c, g);
    // The same history on both: admissions of random lengths, some growth, some
    // releases (which leave pages and blocks to reuse or reclaim).
    std::vector<int64_t> ids, tokens;
    const int64_t scale = c.token_scale;
    for (int64_t id = 1; id <= 8; ++id) {
      const int64_t t = std::uniform_int_distribution<int64_t>(1, 60 * scale)(rng);
      const bool a = bulk->Admit(id, t, g.max_model_len);
      ASSERT_EQ(a, stepped->Admit(id, t, g.max_model_len));
      if (!a) continue;
      const int64_t grown = t + std::uniform_int_distribution<int64_t>(0, 20 * scale)(rng);
      const bool gb = bulk->Grow(id, grown, GrowthPhase::kDecode);
      ASSERT_EQ(gb, stepped->Grow(id, grown, GrowthPhase::kDecode));
      if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
        bulk->Release(id);
        stepped->Release(id);
        continue;
      }
      ids.push_back(id);
      tokens.push_back(gb ? grown : t);
    }
    for (auto* m : {bulk.get(), stepped.get()}) {
      m->OnIterationStart();
      m->TakeStepCost();
    }
    if (ids.empty()) continue;
    const int64_t limit = std::uniform_int_distribution<int64_t>(1, 80 * scale)(rng);
    const int64_t rounds = bulk->CertainDecodeRounds(ids, tokens, limit);
    ASSERT_GE(rounds, 0);
    ASSERT_LE(rounds, limit);
    EXPECT_EQ(rounds, stepped->CertainDecodeRounds(ids, tokens, limit));  // changes nothing
    if (rounds > 0) ++promised_somewhere;
    std::vector<KvUsage> usage;
    bulk->GrowDecodeRounds(ids, tokens, rounds, usage);
    ASSERT_EQ(static_cast<int64_t>(usage.size()), rounds);
    for (int64_t j = 1; j <= rounds; ++j) {
      for (size_t i = 0; i < ids.size(); ++i) {
        ASSERT_TRUE(stepped->Grow(ids[i], tokens[i] + j, GrowthPhase::kDecode)) << c.name;
      }
      stepped->OnIterationStart();
      EXPECT_EQ(Fields(stepped->TakeStepCost()), std::make_tuple(0, 0, 0, 0)) << "round " << j;
      EXPECT_EQ(Fields(stepped->Usage()), Fields(usage[static_cast<size_t>(j - 1)]));
    }
    EXPECT_EQ(Fields(bulk->Usage()), Fields(stepped->Usage()));
    // Both go on alike: growth past the rounds, then releasing everything.
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t t = std::min(g.max_model_len, tokens[i] + rounds + 1);
      EXPECT_EQ(bulk->Grow(ids[i], t, GrowthPhase::kDecode),
                stepped->Grow(ids[i], t, GrowthPhase::kDecode));
      EXPECT_EQ(Fields(bulk->Usage()), Fields(stepped->Usage()));
    }
    EXPECT_EQ(Fields(bulk->TakeStepCost()), Fields(stepped->TakeStepCost()));
    for (int64_t id : ids) {
      bulk->Release(id);
      stepped->Release(id);
    }
    EXPECT_EQ(Fields(bulk->Usage()), Fields(stepped->Usage()));
  }
  EXPECT_GT(promised_somewhere, 0) << "the manager never promised a round";
}

KvCase StaticCase(const char* name, StaticKvConfig::Reserve reserve) {
  KvCase c;
  c.name = name;
  c.type = KvManagerType::kStatic;
  c.reserve = reserve;
  return c;
}

KvCase PagedCase(const char* name, int64_t block_tokens, bool prefix_caching = false) {
  KvCase c;
  c.name = name;
  c.type = KvManagerType::kPaged;
  c.block_tokens = block_tokens;
  c.prefix_caching = prefix_caching;
  return c;
}

KvCase VAttentionCase(const char* name, int64_t page_bytes, bool overlap, bool deferred,
                      int64_t max_slots, int64_t token_scale, bool prefix_caching = false) {
  KvCase c;
  c.prefix_caching = prefix_caching;
  c.name = name;
  c.type = KvManagerType::kVAttention;
  c.page_bytes = page_bytes;
  c.overlap = overlap;
  c.deferred_reclaim = deferred;
  c.max_slots = max_slots;
  c.token_scale = token_scale;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    EveryManager, KvManagerConformance,
    ::testing::Values(StaticCase("StaticMaxModelLen", StaticKvConfig::Reserve::kMaxModelLen),
                      StaticCase("StaticRequestMax", StaticKvConfig::Reserve::kRequestMax),
                      PagedCase("PagedBlock16", 16), PagedCase("PagedBlock32", 32),
                      PagedCase("PagedBlock16PrefixCaching", 16, true),
                      // 64 KiB pages: 32 tokens per page; plenty of slots.
                      VAttentionCase("VAttention64KiBOverlapDeferred", 64 * kKiB, true, true, 256,
                                     1),
                      VAttentionCase("VAttention64KiBOverlapEager", 64 * kKiB, true, false, 256, 1),
                      VAttentionCase("VAttention64KiBSyncDeferred", 64 * kKiB, false, true, 256, 1),
                      VAttentionCase("VAttention64KiBSyncEager", 64 * kKiB, false, false, 256, 1),
                      // 2 MiB pages: 1024 tokens per page; 4 slots, so slots run out too.
                      VAttentionCase("VAttention2MiBOverlapDeferred", 2 * kMiB, true, true, 4, 32),
                      VAttentionCase("VAttention2MiBOverlapEager", 2 * kMiB, true, false, 4, 32),
                      VAttentionCase("VAttention2MiBSyncDeferred", 2 * kMiB, false, true, 4, 32),
                      VAttentionCase("VAttention2MiBSyncEager", 2 * kMiB, false, false, 4, 32),
                      // Prefix caching: whole page groups shared and cached under content
                      // keys. The suite's requests are all different (no Identify), so
                      // nothing is shared, but every released whole page stays cached.
                      VAttentionCase("VAttention64KiBOverlapDeferredPrefixCaching", 64 * kKiB, true,
                                     true, 256, 1, true),
                      VAttentionCase("VAttention64KiBSyncEagerPrefixCaching", 64 * kKiB, false,
                                     false, 256, 1, true),
                      VAttentionCase("VAttention2MiBOverlapDeferredPrefixCaching", 2 * kMiB, true,
                                     true, 4, 32, true),
                      VAttentionCase("VAttention2MiBOverlapEagerPrefixCaching", 2 * kMiB, true,
                                     false, 4, 32, true)),
    [](const ::testing::TestParamInfo<KvCase>& param_info) { return param_info.param.name; });

// ---------------------------------------------------------------------------
// Static reservation.

TEST(StaticKvManager, ReservesMaxModelLenTokensWhateverTheRequest) {
  // 640 tokens of capacity, max_model_len 256.
  auto m = NewStaticKvManager(Geometry(640, 256), {StaticKvConfig::Reserve::kMaxModelLen});
  ASSERT_TRUE(m->Admit(1, 10, 50));
  EXPECT_EQ(m->Usage().allocated_bytes, 256 * kBytesPerToken);  // 4 MiB
  EXPECT_EQ(m->Usage().allocated_bytes, 4 * kMiB);
  EXPECT_EQ(m->Usage().live_bytes, 10 * kBytesPerToken);
}

TEST(StaticKvManager, ReservesPromptPlusOutputWhenToldTheRequestsMaximum) {
  auto m = NewStaticKvManager(Geometry(640, 256), {StaticKvConfig::Reserve::kRequestMax});
  ASSERT_TRUE(m->Admit(1, 10, 50));
  EXPECT_EQ(m->Usage().allocated_bytes, 50 * kBytesPerToken);
  EXPECT_EQ(m->Usage().live_bytes, 10 * kBytesPerToken);
}

TEST(StaticKvManager, RefusesAdmissionWhenTheReservationDoesNotFit) {
  // 2 x 256 = 512 tokens reserved of 640; a third reservation of 256 needs 768.
  auto m = NewStaticKvManager(Geometry(640, 256), {StaticKvConfig::Reserve::kMaxModelLen});
  EXPECT_TRUE(m->Admit(1, 1, 1));
  EXPECT_TRUE(m->Admit(2, 1, 1));
  EXPECT_FALSE(m->Admit(3, 1, 1));
  EXPECT_EQ(m->Usage().allocated_bytes, 512 * kBytesPerToken);
}

TEST(StaticKvManager, AdmitsAReservationThatFillsTheCacheExactly) {
  // 300 + 300 = 600 of 640 tokens: 40 more fit exactly, 41 do not.
  auto m = NewStaticKvManager(Geometry(640, 300), {StaticKvConfig::Reserve::kRequestMax});
  ASSERT_TRUE(m->Admit(1, 100, 300));
  ASSERT_TRUE(m->Admit(2, 100, 300));
  EXPECT_FALSE(m->Admit(3, 1, 41));
  EXPECT_TRUE(m->Admit(3, 1, 40));
  EXPECT_EQ(m->Usage().allocated_bytes, m->Usage().capacity_bytes);
}

TEST(StaticKvManager, GrowthInsideTheReservationSucceedsWhenTheCacheIsFull) {
  auto m = NewStaticKvManager(Geometry(512, 256), {StaticKvConfig::Reserve::kMaxModelLen});
  ASSERT_TRUE(m->Admit(1, 1, 1));
  ASSERT_TRUE(m->Admit(2, 1, 1));
  ASSERT_FALSE(m->Admit(3, 1, 1));
  for (int64_t t = 2; t <= 256; ++t) {
    ASSERT_TRUE(m->Grow(1, t, t % 2 ? GrowthPhase::kDecode : GrowthPhase::kPrefill)) << t;
  }
  EXPECT_EQ(m->Usage().live_bytes, (256 + 1) * kBytesPerToken);
  EXPECT_EQ(m->Usage().allocated_bytes, 512 * kBytesPerToken);
}

TEST(StaticKvManager, GrowthPastTheRequestsOwnReservationIsRefused) {
  auto m = NewStaticKvManager(Geometry(640, 256), {StaticKvConfig::Reserve::kRequestMax});
  ASSERT_TRUE(m->Admit(1, 10, 50));
  EXPECT_TRUE(m->Grow(1, 50, GrowthPhase::kDecode));
  EXPECT_FALSE(m->Grow(1, 51, GrowthPhase::kDecode));
  EXPECT_EQ(m->Usage().live_bytes, 50 * kBytesPerToken);
}

TEST(StaticKvManager, ReleaseReturnsTheWholeReservation) {
  auto m = NewStaticKvManager(Geometry(640, 256), {StaticKvConfig::Reserve::kMaxModelLen});
  ASSERT_TRUE(m->Admit(1, 10, 50));
  ASSERT_TRUE(m->Admit(2, 20, 50));
  m->Release(1);
  EXPECT_EQ(m->Usage().allocated_bytes, 256 * kBytesPerToken);
  EXPECT_EQ(m->Usage().live_bytes, 20 * kBytesPerToken);
}

// ---------------------------------------------------------------------------
// PagedAttention.

KvUsage PagedUsageAfterAdmitting(int64_t block_tokens, int64_t tokens) {
  PagedKvConfig config;
  config.block_tokens = block_tokens;
  auto m = NewPagedKvManager(Geometry(640, 256), config);
  EXPECT_TRUE(m->Admit(1, tokens, tokens));
  return m->Usage();
}

TEST(PagedKvManager, SixteenTokensTakeOneBlockOfSixteen) {
  // One block = 16 tokens x 16 KiB = 256 KiB.
  EXPECT_EQ(PagedUsageAfterAdmitting(16, 16).allocated_bytes, 1 * 16 * kBytesPerToken);
  EXPECT_EQ(PagedUsageAfterAdmitting(16, 16).allocated_bytes, 256 * kKiB);
}

TEST(PagedKvManager, SeventeenTokensTakeTwoBlocksOfSixteen) {
  EXPECT_EQ(PagedUsageAfterAdmitting(16, 17).allocated_bytes, 2 * 16 * kBytesPerToken);
  EXPECT_EQ(PagedUsageAfterAdmitting(16, 17).live_bytes, 17 * kBytesPerToken);
}

TEST(PagedKvManager, ThirtyTwoTokensTakeOneBlockOfThirtyTwo) {
  EXPECT_EQ(PagedUsageAfterAdmitting(32, 32).allocated_bytes, 1 * 32 * kBytesPerToken);
}

TEST(PagedKvManager, ThirtyThreeTokensTakeTwoBlocksOfThirtyTwo) {
  EXPECT_EQ(PagedUsageAfterAdmitting(32, 33).allocated_bytes, 2 * 32 * kBytesPerToken);
}

TEST(PagedKvManager, GrowingPastABlockBoundaryTakesOneMoreBlock) {
  auto m = NewPagedKvManager(Geometry(640, 256), PagedKvConfig{16, 0.0});
  ASSERT_TRUE(m->Admit(1, 15, 100));
  EXPECT_EQ(m->Usage().allocated_bytes, 1 * 16 * kBytesPerToken);
  ASSERT_TRUE(m->Grow(1, 16, GrowthPhase::kDecode));
  EXPECT_EQ(m->Usage().allocated_bytes, 1 * 16 * kBytesPerToken);
  ASSERT_TRUE(m->Grow(1, 17, GrowthPhase::kDecode));
  EXPECT_EQ(m->Usage().allocated_bytes, 2 * 16 * kBytesPerToken);
  ASSERT_TRUE(m->Grow(1, 49, GrowthPhase::kPrefill));  // ceil(49 / 16) = 4 blocks
  EXPECT_EQ(m->Usage().allocated_bytes, 4 * 16 * kBytesPerToken);
}

TEST(PagedKvManager, AdmissionKeepsTheWatermarkFreeButGrowthMayUseIt) {
  // 250 blocks of 16 tokens; watermark 0.01 x 250 = 2.5 -> floor 2 blocks kept free.
  const int64_t blocks = 250;
  const int64_t watermark_blocks = static_cast<int64_t>(std::floor(0.01 * blocks));
  ASSERT_EQ(watermark_blocks, 2);
  const KvGeometry g = Geometry(blocks * 16, 4096);
  PagedKvConfig config;
  config.block_tokens = 16;
  config.watermark = 0.01;

  // A request of 249 blocks would leave 1 < 2 free: refused.
  EXPECT_FALSE(NewPagedKvManager(g, config)->Admit(1, 249 * 16, 249 * 16));

  // 248 blocks leave exactly 2 free: admitted.
  auto m = NewPagedKvManager(g, config);
  ASSERT_TRUE(m->Admit(1, 248 * 16, 250 * 16));
  EXPECT_EQ(m->Usage().allocated_bytes, 248 * 16 * kBytesPerToken);
  EXPECT_EQ(m->MaxAdmissibleTokens(), (blocks - watermark_blocks) * 16);  // 3968

  // Even a one-token request would dip into the watermark now.
  EXPECT_FALSE(m->Admit(2, 1, 1));

  // Growth uses the last two blocks, then the pool is empty.
  EXPECT_TRUE(m->Grow(1, 249 * 16 + 1, GrowthPhase::kDecode));
  EXPECT_TRUE(m->Grow(1, 250 * 16, GrowthPhase::kDecode));
  EXPECT_EQ(m->Usage().allocated_bytes, m->Usage().capacity_bytes);
  EXPECT_FALSE(m->Grow(1, 250 * 16 + 1, GrowthPhase::kDecode));
}

TEST(PagedKvManager, PromisesDecodeRoundsUntilTheFreeBlocksRunOut) {
  // 5 blocks of 16 tokens. Request 1 holds 15 tokens (1 block), request 2 holds 32
  // (2 blocks): 2 blocks free. Round r grows them to 15 + r and 32 + r tokens:
  // round 1 (16, 33) takes request 2's third block; round 2 (17, 34) request 1's
  // second: 2 taken, none free; rounds 3-16 (up to 31, 48) fit those blocks; round
  // 17 (32, 49) needs request 2's fourth block. So 16 rounds are certain.
  auto m = NewPagedKvManager(Geometry(5 * 16, 256), PagedKvConfig{16, 0.0});
  ASSERT_TRUE(m->Admit(1, 15, 100));
  ASSERT_TRUE(m->Admit(2, 32, 100));
  const std::vector<int64_t> ids = {1, 2}, tokens = {15, 32};
  EXPECT_EQ(m->CertainDecodeRounds(ids, tokens, 100), 16);
  EXPECT_EQ(m->CertainDecodeRounds(ids, tokens, 5), 5);  // never beyond the limit
  std::vector<KvUsage> usage;
  m->GrowDecodeRounds(ids, tokens, 16, usage);
  ASSERT_EQ(usage.size(), 16u);
  EXPECT_EQ(usage[0].allocated_bytes, 4 * 16 * kBytesPerToken);  // round 1: 1 + 3 blocks
  EXPECT_EQ(usage[1].allocated_bytes, 5 * 16 * kBytesPerToken);  // round 2: 2 + 3 blocks
  EXPECT_EQ(usage[15].live_bytes, (31 + 48) * kBytesPerToken);   // round 16
  // Round 17 as stepping would make it: request 1 fits its blocks, request 2 does not.
  EXPECT_TRUE(m->Grow(1, 32, GrowthPhase::kDecode));
  EXPECT_FALSE(m->Grow(2, 49, GrowthPhase::kDecode));
}

TEST(StaticKvManager, PromisesDecodeRoundsUpToTheSmallestReservationLeft) {
  auto m = NewStaticKvManager(Geometry(640, 256), {StaticKvConfig::Reserve::kRequestMax});
  ASSERT_TRUE(m->Admit(1, 10, 50));   // 40 tokens of reservation left
  ASSERT_TRUE(m->Admit(2, 90, 100));  // 10 left
  EXPECT_EQ(m->CertainDecodeRounds(std::vector<int64_t>{1, 2}, std::vector<int64_t>{10, 90}, 99),
            10);
}

TEST(VAttentionKvManager, PromisesNoDecodeRoundWhileEagerReclamationHasPagesToUnmap) {
  VAttentionKvConfig config;
  config.page_bytes = 64 * kKiB;  // 32 tokens per page
  config.backend = VmmBackend::kUvm;
  config.max_slots = 4;
  config.overlap = true;
  config.deferred_reclaim = false;
  auto m = NewVAttentionKvManager(Geometry(640, 256), config);
  ASSERT_TRUE(m->Admit(1, 10, 100));  // one page group: 22 more tokens fit
  m->OnIterationStart();
  m->TakeStepCost();
  const std::vector<int64_t> one = {1}, ten = {10};
  EXPECT_EQ(m->CertainDecodeRounds(one, ten, 100), 22);
  // A finished request leaves its page on an idle slot; the background thread would
  // unmap it one group per iteration, so nothing is promised until it is gone.
  ASSERT_TRUE(m->Admit(2, 40, 100));
  m->Release(2);
  m->TakeStepCost();
  EXPECT_EQ(m->CertainDecodeRounds(one, ten, 100), 0);
}

// ---- Prefix caching: full computed blocks are cached under their content keys ----

// 8 blocks of 16 tokens, no watermark, prefix caching on.
std::unique_ptr<KvCacheManager> CachingPaged() {
  PagedKvConfig config;
  config.block_tokens = 16;
  config.watermark = 0;
  config.prefix_caching = true;
  return NewPagedKvManager(Geometry(8 * 16, 256), config);
}

TEST(PagedKvManager, APreemptedRequestFindsItsWholeBlocksButRecomputesItsLastToken) {
  auto m = CachingPaged();
  ASSERT_TRUE(m->Admit(1, 40, 100));  // 3 blocks: 2 whole (32 tokens) and 8 tokens
  m->Release(1);                      // preempted: its 2 whole blocks stay cached
  EXPECT_EQ(m->Usage().allocated_bytes, 0);
  EXPECT_EQ(m->Usage().cached_bytes, 2 * 16 * kBytesPerToken);
  // Re-admitted with its 40 tokens plus one generated: the 2 whole blocks hit.
  EXPECT_EQ(m->CachedPrefixTokens(1, 41), 32);
  // At exactly 32 tokens both blocks hold them, but the last token is computed
  // again for its logits: only (32 - 1) / 16 = 1 block counts.
  EXPECT_EQ(m->CachedPrefixTokens(1, 32), 16);
  EXPECT_EQ(m->CachedPrefixTokens(2, 41), 0);  // another request finds nothing
  // Admitting it reuses those 2 blocks and takes 1 new one: 3 blocks allocated, and
  // the old partial block (content not reusable) is just free.
  ASSERT_TRUE(m->Admit(1, 41, 100));
  EXPECT_EQ(m->Usage().allocated_bytes, 3 * 16 * kBytesPerToken);
  EXPECT_EQ(m->Usage().cached_bytes, 0);
}

TEST(PagedKvManager, AllocationsEvictTheOldestReleasedBlocksAndARequestsTailFirst) {
  auto m = CachingPaged();
  // Queue: 8 never-used blocks. Request 1 takes 3 of them; released, its run of 3
  // joins the queue behind the 5 unused ones.
  ASSERT_TRUE(m->Admit(1, 40, 100));
  m->Release(1);
  // Request 2 takes 5 blocks: exactly the 5 unused ones; request 1's run is whole.
  ASSERT_TRUE(m->Admit(2, 80, 100));
  EXPECT_EQ(m->CachedPrefixTokens(1, 41), 32);
  // Request 3 takes 1 block: request 1's tail (its partial block) goes first, so
  // both whole blocks still hit.
  ASSERT_TRUE(m->Admit(3, 16, 100));
  EXPECT_EQ(m->CachedPrefixTokens(1, 41), 32);
  EXPECT_EQ(m->Usage().cached_bytes, 2 * 16 * kBytesPerToken);
  // Request 3 grows by a block: request 1's second block is evicted.
  ASSERT_TRUE(m->Grow(3, 17, GrowthPhase::kDecode));
  EXPECT_EQ(m->CachedPrefixTokens(1, 41), 16);
  EXPECT_EQ(m->Usage().cached_bytes, 1 * 16 * kBytesPerToken);
  // Capacity counts cached blocks as free: 8 - 5 - 2 = 1 block can still be admitted.
  EXPECT_TRUE(m->CanAdmit(4, 16, 16));
  EXPECT_FALSE(m->CanAdmit(4, 17, 17));
}

TEST(PagedKvManager, OnlyTheWrittenWholeBlocksOfAPartlyComputedRequestCanBeFoundAgain) {
  // Sarathi holds a 40-token prompt from admission but had computed 20 tokens when
  // it was preempted: of its 3 blocks only 20 / 16 = 1 whole block holds written KV.
  auto m = CachingPaged();
  ASSERT_TRUE(m->Admit(1, 40, 100));
  m->ReleaseWritten(1, 20);
  EXPECT_EQ(m->CachedPrefixTokens(1, 41), 16);
  EXPECT_EQ(m->Usage().cached_bytes, 1 * 16 * kBytesPerToken);  // the one whole written block
  // Nothing written: nothing to find.
  ASSERT_TRUE(m->Admit(2, 40, 100));
  m->ReleaseWritten(2, 0);
  EXPECT_EQ(m->CachedPrefixTokens(2, 41), 0);
}

TEST(PagedKvManager, WithoutPrefixCachingNothingIsKeptOrFound) {
  auto m = NewPagedKvManager(Geometry(8 * 16, 256), PagedKvConfig{16, 0.0});
  ASSERT_TRUE(m->Admit(1, 40, 100));
  m->Release(1);
  EXPECT_EQ(m->Usage().cached_bytes, 0);
  EXPECT_EQ(m->CachedPrefixTokens(1, 41), 0);
}

// Two requests of one stream (a shared system prompt of 50 tokens): the 3 whole
// blocks inside it (tokens 0-47) are cached once request 1 computed them, and
// request 2 shares them instead of computing them.
TEST(PagedPrefixCache, TwoRequestsOfOneStreamShareItsWholeComputedBlocks) {
  auto m = CachingPaged();
  PrefixIdentity system;
  system.stream = 77;
  system.stream_tokens = 50;
  system.request_id = 1;
  m->Identify(1, system);
  ASSERT_TRUE(m->Admit(1, 60, 100));           // 4 blocks
  EXPECT_EQ(m->CachedPrefixTokens(2, 70), 0);  // nothing computed yet
  ASSERT_TRUE(m->WantsComputedTokens());
  m->OnTokensComputed(1, 60);  // 3 whole blocks: ends 16, 32, 48, all inside the stream
  system.request_id = 2;
  m->Identify(2, system);
  EXPECT_EQ(m->CachedPrefixTokens(2, 70), 48);
  ASSERT_TRUE(m->Admit(2, 70, 100));  // 5 blocks: 3 shared, 2 new
  // 4 + 2 blocks in use; live counts each shared token once: 60 + 70 - 48 = 82.
  EXPECT_EQ(m->Usage().allocated_bytes, 6 * 16 * kBytesPerToken);
  EXPECT_EQ(m->Usage().live_bytes, 82 * kBytesPerToken);
  // Request 1 finishes: its partial 4th block is freed, the shared ones stay in use.
  m->Release(1);
  EXPECT_EQ(m->Usage().allocated_bytes, 5 * 16 * kBytesPerToken);
  EXPECT_EQ(m->Usage().live_bytes, 70 * kBytesPerToken);
  EXPECT_EQ(m->Usage().cached_bytes, 0);
  // Request 2 finishes too: 3 shared blocks plus its own whole 4th (ends at 64, past
  // the stream: its own content) stay cached.
  m->OnTokensComputed(2, 70);
  m->Release(2);
  EXPECT_EQ(m->Usage().cached_bytes, 4 * 16 * kBytesPerToken);
  // A third request of the stream finds the 3 stream blocks, not request 2's own one.
  system.request_id = 3;
  m->Identify(3, system);
  EXPECT_EQ(m->CachedPrefixTokens(3, 100), 48);
}

// Mooncake-style chained hashes, 32 tokens each: requests [11, 12] and [11, 13] share
// the first hash's two 16-token blocks and nothing after.
TEST(PagedPrefixCache, ChainedHashesShareTheBlocksUpToTheFirstDifferentHash) {
  auto m = CachingPaged();
  const std::vector<uint64_t> a = {11, 12}, b = {11, 13};
  PrefixIdentity p;
  p.hash_ids = a;
  p.hash_block_tokens = 32;
  p.hash_tokens = 64;
  p.request_id = 1;
  m->Identify(1, p);
  ASSERT_TRUE(m->Admit(1, 64, 100));
  m->OnTokensComputed(1, 64);
  p.hash_ids = b;
  p.request_id = 2;
  m->Identify(2, p);
  EXPECT_EQ(m->CachedPrefixTokens(2, 65), 32);
  p.hash_ids = a;
  p.request_id = 3;
  m->Identify(3, p);
  EXPECT_EQ(m->CachedPrefixTokens(3, 65), 64);  // same hashes: all 4 blocks
}

// Freed blocks go to the back of the free queue, a request's last block first;
// allocation evicts from the front: the least recently freed content goes first.
TEST(PagedPrefixCache, EvictionTakesTheLeastRecentlyFreedBlocksAndARequestsTailFirst) {
  auto m = CachingPaged();  // 8 blocks
  PrefixIdentity s1, s2;
  s1.stream = 1;
  s1.stream_tokens = 1000;
  s2.stream = 2;
  s2.stream_tokens = 1000;
  m->Identify(1, s1);
  ASSERT_TRUE(m->Admit(1, 48, 100));  // 3 whole blocks of stream 1
  m->Release(1);
  m->Identify(2, s2);
  ASSERT_TRUE(m->Admit(2, 48, 100));  // 3 whole blocks of stream 2
  m->Release(2);
  // Free queue: 2 never-used blocks, then stream 1's blocks 3,2,1, then stream 2's 3,2,1.
  ASSERT_TRUE(m->Admit(3, 64, 100));  // 4 blocks: the 2 unused, then stream 1's last two
  s1.request_id = 4;
  m->Identify(4, s1);
  EXPECT_EQ(m->CachedPrefixTokens(4, 49), 16);  // only stream 1's first block is left
  s2.request_id = 5;
  m->Identify(5, s2);
  EXPECT_EQ(m->CachedPrefixTokens(5, 49), 48);  // stream 2 untouched
}

TEST(PagedPrefixCache, AHitOnABlockInUseTakesNoFreeBlockSoItStillFitsAFullPool) {
  auto m = CachingPaged();  // 8 blocks, no watermark
  PrefixIdentity s;
  s.stream = 5;
  s.stream_tokens = 1000;
  m->Identify(1, s);
  ASSERT_TRUE(m->Admit(1, 64, 200));  // 4 blocks
  m->OnTokensComputed(1, 64);
  m->Identify(2, s);
  // Request 1's 4 whole blocks are cached and in use; 4 blocks are free. Request 2
  // (100 tokens, 7 blocks) hits all 4 (at most (100 - 1) / 16 = 6 could) and needs
  // only 3 new ones.
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 64);
  EXPECT_TRUE(m->CanAdmit(2, 100, 200));   // 4 shared + 3 new
  EXPECT_FALSE(m->CanAdmit(2, 129, 200));  // 4 shared + 5 new > 4 free
}

TEST(ContentKey, TheSameContentUpToTheSameEndIsTheSameKeyAndOnlyThen) {
  PrefixIdentity a, b;
  a.stream = b.stream = 9;
  a.stream_tokens = b.stream_tokens = 100;
  a.request_id = 1;
  b.request_id = 2;
  EXPECT_EQ(ContentKey(a, 64), ContentKey(b, 64));
  EXPECT_NE(ContentKey(a, 64), ContentKey(a, 80));
  EXPECT_NE(ContentKey(a, 112), ContentKey(b, 112));  // past the stream: each its own
  EXPECT_EQ(ContentKey(a, 112), ContentKey(a, 112));
  PrefixIdentity none;
  none.request_id = 9;  // a request id equal to a stream id is still another content
  EXPECT_NE(ContentKey(none, 64), ContentKey(a, 64));
}

// Hash ids [11, 12] of 32 tokens covering the first 50 tokens, then a stream up to
// token 100, then the request's own tokens.
TEST(ContentKey, EachEndHasTheSourceCoveringItAndTheLastEndThatSourceCovers) {
  const std::vector<uint64_t> ids = {11, 12};
  PrefixIdentity p;
  p.hash_ids = ids;
  p.hash_block_tokens = 32;
  p.hash_tokens = 50;
  p.stream = 9;
  p.stream_tokens = 100;
  p.request_id = 5;
  using Kind = ContentSource::Kind;
  const auto at = [&](int64_t end) { return ContentSourceAt(p, end); };
  EXPECT_EQ(at(1).source, (ContentSource{Kind::kHash, 11}));
  EXPECT_EQ(at(1).last_end, 32);
  EXPECT_EQ(at(32).source, (ContentSource{Kind::kHash, 11}));
  EXPECT_EQ(at(33).source, (ContentSource{Kind::kHash, 12}));
  EXPECT_EQ(at(33).last_end, 50);  // the hash ids cover 50 tokens, not 64
  EXPECT_EQ(at(51).source, (ContentSource{Kind::kStream, 9}));
  EXPECT_EQ(at(51).last_end, 100);
  EXPECT_EQ(at(101).source, (ContentSource{Kind::kOwn, 5}));
  EXPECT_EQ(at(101).last_end, std::numeric_limits<int64_t>::max());
  // A key is its source's and its end's: another request with hash 12 at token 40
  // has the same key there, and another one (hash 12 against the stream) at 60.
  PrefixIdentity q;
  q.hash_ids = ids;
  q.hash_block_tokens = 32;
  q.hash_tokens = 64;
  q.request_id = 6;
  EXPECT_EQ(ContentKey(p, 40), ContentKey(q, 40));
  EXPECT_NE(ContentKey(p, 60), ContentKey(q, 60));
  // A group key is its source's and its group's.
  const ContentSource twelve = at(40).source;
  EXPECT_EQ(ContentGroupKey(twelve, 1), ContentGroupKey(ContentSourceAt(q, 40).source, 1));
  EXPECT_NE(ContentGroupKey(twelve, 1), ContentGroupKey(twelve, 2));
  EXPECT_NE(ContentGroupKey(twelve, 1), ContentGroupKey(at(60).source, 1));
}

// The answer for a waiting request is kept between calls (it is asked every
// iteration): it must still follow every block computed or evicted in between.
TEST(PagedPrefixCache, AWaitingRequestsCachedPrefixFollowsEveryBlockComputedOrEvictedSince) {
  auto m = CachingPaged();  // 8 blocks
  PrefixIdentity s;
  s.stream = 3;
  s.stream_tokens = 1000;
  s.request_id = 1;
  m->Identify(1, s);
  ASSERT_TRUE(m->Admit(1, 64, 200));  // 4 blocks
  m->OnTokensComputed(1, 16);         // block 1 cached
  s.request_id = 2;
  m->Identify(2, s);
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 16);
  // 7 blocks: 1 shared (in use) + 6 new > 4 free.
  EXPECT_FALSE(m->CanAdmit(2, 100, 200));
  m->OnTokensComputed(1, 48);  // blocks 2 and 3 cached too
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 48);
  // Request 1 is preempted having written 48 tokens: blocks 1-3 stay cached, its
  // 4th block (nothing written) is just free. Free queue: the 4 never-used blocks,
  // then its blocks 4, 3, 2, 1.
  m->ReleaseWritten(1, 48);
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 48);
  EXPECT_EQ(m->Usage().cached_bytes, 3 * 16 * kBytesPerToken);
  // Request 9 (its own content) takes 5 blocks: the 4 never-used and request 1's
  // empty 4th. Nothing cached is evicted.
  ASSERT_TRUE(m->Admit(9, 80, 200));
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 48);
  // Each further block it takes evicts the stream's last cached block.
  ASSERT_TRUE(m->Grow(9, 81, GrowthPhase::kDecode));
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 32);
  ASSERT_TRUE(m->Grow(9, 97, GrowthPhase::kDecode));
  EXPECT_EQ(m->CachedPrefixTokens(2, 100), 16);
  EXPECT_EQ(m->Usage().cached_bytes, 1 * 16 * kBytesPerToken);
}

// A stream's 96 one-token blocks (3 runs of 32) are freed and hit again by 100
// requests in turn, each also taking 1 new block for its last token: every hit takes
// the blocks back out of the middle of the free queue, 100 x 3 times. The eviction
// order afterwards is still exactly the least recently freed first.
TEST(PagedPrefixCache, BlocksHitOutOfTheFreeQueueOverAndOverKeepTheEvictionOrder) {
  PagedKvConfig config;
  config.block_tokens = 1;
  config.watermark = 0;
  config.prefix_caching = true;
  auto m = NewPagedKvManager(Geometry(300, 300), config);  // 300 blocks of 1 token
  PrefixIdentity s;
  s.stream = 7;
  s.stream_tokens = 96;
  for (int64_t id = 1; id <= 101; ++id) {
    s.request_id = id;
    m->Identify(id, s);
    // 97 tokens: the 96 stream blocks hit (all but request 1), 1 block of its own.
    EXPECT_EQ(m->CachedPrefixTokens(id, 97), id == 1 ? 0 : 96);
    ASSERT_TRUE(m->Admit(id, 97, 97));
    EXPECT_EQ(m->Usage().allocated_bytes, 97 * kBytesPerToken);
    m->Release(id);  // all 97 computed: the stream's 96 and its own 97th stay cached
  }
  // Cached: the stream's 96 and the 101 requests' own blocks; free and never used:
  // 300 - 197 = 103. Free queue: those 103, the 101 own blocks in request order,
  // then (request 101's release) the stream's blocks from the 96th down.
  EXPECT_EQ(m->Usage().cached_bytes, (96 + 101) * kBytesPerToken);
  EXPECT_EQ(m->Usage().allocated_bytes, 0);
  // 103 + 101 + 32 blocks: the never-used, the own blocks, and stream blocks 96-65.
  ASSERT_TRUE(m->Admit(500, 236, 300));
  s.request_id = 600;
  m->Identify(600, s);
  EXPECT_EQ(m->CachedPrefixTokens(600, 97), 64);
  // One block more: stream block 64 goes.
  ASSERT_TRUE(m->Admit(501, 1, 1));
  EXPECT_EQ(m->CachedPrefixTokens(600, 97), 63);
  EXPECT_EQ(m->Usage().cached_bytes, 63 * kBytesPerToken);
}

// ---- The prefix-cached paged manager against a block-by-block reference ----

// vLLM's prefix cache one block at a time, as plainly as it can be written: every
// block carries its reference count and content key, one hash map from key to
// block, the free queue a list in LRU order. The manager keeps the same rules in
// runs of blocks; the test below drives both with the same random calls.
class ReferencePrefixCache {
 public:
  ReferencePrefixCache(int64_t total_blocks, int64_t block_tokens, double watermark)
      : bt_(block_tokens),
        watermark_(static_cast<int64_t>(watermark * static_cast<double>(total_blocks))),
        blocks_(static_cast<size_t>(total_blocks)) {
    for (int b = 0; b < total_blocks; ++b) free_.push_back(b);
  }
  void Identify(int64_t id, const PrefixIdentity& p) { ids_[id] = p; }
  int64_t Hits(int64_t id, int64_t tokens, std::vector<int>* hits = nullptr) const {
    const PrefixIdentity p = IdentityOf(id);
    int64_t n = 0;
    for (int64_t b = 0; b < (tokens - 1) / bt_; ++b) {
      const auto it = cached_.find(ContentKey(p, (b + 1) * bt_));
      if (it == cached_.end()) break;
      if (hits != nullptr) hits->push_back(it->second);
      ++n;
    }
    return n;
  }
  bool CanAdmit(int64_t id, int64_t tokens) const {
    std::vector<int> hits;
    Hits(id, tokens, &hits);
    int64_t free_after = static_cast<int64_t>(free_.size());
    for (const int b : hits) free_after -= blocks_[static_cast<size_t>(b)].ref == 0 ? 1 : 0;
    const int64_t fresh = CeilDiv(tokens, bt_) - static_cast<int64_t>(hits.size());
    return free_after - fresh >= watermark_;
  }
  bool Admit(int64_t id, int64_t tokens) {
    if (!CanAdmit(id, tokens)) return false;
    std::vector<int> hits;
    Hits(id, tokens, &hits);
    Request& r = requests_[id];
    r = Request{IdentityOf(id), {}, tokens, static_cast<int64_t>(hits.size())};
    for (const int b : hits) {
      if (blocks_[static_cast<size_t>(b)].ref++ == 0) {
        free_.remove(b);
      } else {
        ++shared_;
      }
      r.table.push_back(b);
    }
    Take(CeilDiv(tokens, bt_) - static_cast<int64_t>(hits.size()), r.table);
    live_ += tokens;
    return true;
  }
  bool Grow(int64_t id, int64_t tokens) {
    Request& r = requests_.at(id);
    const int64_t extra = CeilDiv(tokens, bt_) - static_cast<int64_t>(r.table.size());
    if (extra > static_cast<int64_t>(free_.size())) return false;
    Take(extra, r.table);
    live_ += tokens - r.tokens;
    r.tokens = tokens;
    return true;
  }
  void Computed(int64_t id, int64_t computed) {
    Request& r = requests_.at(id);
    const int64_t full = std::min(computed, r.tokens) / bt_;
    for (int64_t b = r.registered; b < full; ++b) {
      const uint64_t key = ContentKey(r.prefix, (b + 1) * bt_);
      Block& block = blocks_[static_cast<size_t>(r.table[static_cast<size_t>(b)])];
      if (block.key == 0 && cached_.emplace(key, r.table[static_cast<size_t>(b)]).second) {
        block.key = key;
      }
    }
    r.registered = std::max(r.registered, full);
  }
  void ReleaseWritten(int64_t id, int64_t written) {
    Computed(id, written);
    const Request r = requests_.at(id);
    requests_.erase(id);
    for (auto it = r.table.rbegin(); it != r.table.rend(); ++it) {
      if (--blocks_[static_cast<size_t>(*it)].ref > 0) {
        --shared_;
      } else {
        free_.push_back(*it);
      }
    }
    live_ -= r.tokens;
    ids_.erase(id);
  }
  // (allocated blocks, live tokens, cached free blocks)
  std::tuple<int64_t, int64_t, int64_t> State() const {
    int64_t cached_free = 0;
    for (const int b : free_) cached_free += blocks_[static_cast<size_t>(b)].key != 0 ? 1 : 0;
    return {static_cast<int64_t>(blocks_.size() - free_.size()), live_ - shared_ * bt_,
            cached_free};
  }

 private:
  struct Block {
    int ref = 0;
    uint64_t key = 0;
  };
  struct Request {
    PrefixIdentity prefix;
    std::vector<int> table;
    int64_t tokens = 0;
    int64_t registered = 0;
  };
  PrefixIdentity IdentityOf(int64_t id) const {
    const auto it = ids_.find(id);
    if (it != ids_.end()) return it->second;
    PrefixIdentity own;
    own.request_id = id;
    return own;
  }
  void Take(int64_t n, std::vector<int>& table) {
    for (int64_t i = 0; i < n; ++i) {
      const int b = free_.front();
      free_.pop_front();
      Block& block = blocks_[static_cast<size_t>(b)];
      if (block.key != 0) cached_.erase(block.key);
      block = Block{1, 0};
      table.push_back(b);
    }
  }
  int64_t bt_;
  int64_t watermark_;
  std::vector<Block> blocks_;
  std::list<int> free_;
  std::unordered_map<uint64_t, int> cached_;
  std::map<int64_t, Request> requests_;
  std::map<int64_t, PrefixIdentity> ids_;
  int64_t live_ = 0;
  int64_t shared_ = 0;
};

// Random admissions, growth (one request, or skip-ahead decode runs of all), computed
// tokens, preemptions and releases of requests that share hash chains (hash blocks
// not aligned to the blocks), streams and their own resumed blocks, in a pool small
// enough to evict all the time: after every call the manager answers and accounts
// exactly as the block-by-block reference.
TEST(PagedPrefixCache, AgreesWithABlockByBlockReferenceOnLongRandomRuns) {
  for (const int64_t block_tokens : {1, 4, 7, 16}) {
    for (const int64_t pool_blocks : {40, 150, 400}) {
      SCOPED_TRACE(testing::Message()
                   << "block_tokens " << block_tokens << ", pool " << pool_blocks);
      const int64_t max_len = 130 * block_tokens;  // up to 130 blocks: several windows
      PagedKvConfig config;
      config.block_tokens = block_tokens;
      config.watermark = 0.02;
      config.prefix_caching = true;
      auto m = NewPagedKvManager(Geometry(pool_blocks * block_tokens, max_len), config);
      ReferencePrefixCache ref(pool_blocks, block_tokens, config.watermark);
      std::mt19937_64 rng(static_cast<uint64_t>(block_tokens * 1000 + pool_blocks));
      const auto pick = [&](int64_t lo, int64_t hi) {  // uniform in [lo, hi]
        return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
      };
      // Three hash chains that share their first links, two streams.
      const std::vector<std::vector<uint64_t>> chains = {
          {1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 9, 10, 11, 12, 13, 14}, {1, 15, 16, 17, 18, 19, 20, 21}};
      struct Live {
        int64_t tokens = 0;
        int64_t computed = 0;
      };
      std::map<int64_t, Live> admitted;
      std::map<int64_t, int64_t> waiting;  // id -> tokens to admit with
      std::map<int64_t, PrefixIdentity> prefixes;
      int64_t next_id = 1;
      for (int step = 0; step < 6000; ++step) {
        const int64_t op = pick(0, 9);
        if (op <= 1 && waiting.size() < 6) {
          const int64_t id = next_id++;
          PrefixIdentity p;
          p.request_id = id;
          const int64_t kind = pick(0, 3);
          if (kind == 0 || kind == 3) {
            p.hash_ids = chains[static_cast<size_t>(pick(0, 2))];
            p.hash_block_tokens = block_tokens * pick(1, 40) + pick(0, 1);
            p.hash_tokens = std::min<int64_t>(
                static_cast<int64_t>(p.hash_ids.size()) * p.hash_block_tokens, max_len / 2);
          }
          if (kind >= 2) {
            p.stream = static_cast<uint64_t>(pick(1, 2));
            p.stream_tokens = pick(1, max_len);
          }
          prefixes[id] = p;
          m->Identify(id, p);
          ref.Identify(id, p);
          waiting[id] = pick(1, max_len / 2);
        } else if (op <= 4 && !waiting.empty()) {
          auto it = waiting.begin();
          std::advance(it, pick(0, static_cast<int64_t>(waiting.size()) - 1));
          const auto [id, tokens] = *it;
          ASSERT_EQ(m->CachedPrefixTokens(id, tokens), ref.Hits(id, tokens) * block_tokens);
          ASSERT_EQ(m->CanAdmit(id, tokens, max_len), ref.CanAdmit(id, tokens));
          const int64_t cached = m->CachedPrefixTokens(id, tokens);
          const bool in = ref.Admit(id, tokens);
          ASSERT_EQ(m->Admit(id, tokens, max_len), in) << "step " << step;
          if (in) {
            waiting.erase(id);
            admitted[id] = Live{tokens, cached};
          }
        } else if (op == 5 && !admitted.empty()) {
          // A skip-ahead decode run of every admitted request: the promised rounds
          // are the reference's Grow calls round by round, with the same usage.
          std::vector<int64_t> ids, held;
          for (const auto& [id, l] : admitted) {
            ids.push_back(id);
            held.push_back(l.tokens);
          }
          const int64_t rounds = m->CertainDecodeRounds(ids, held, pick(1, 3 * block_tokens));
          std::vector<KvUsage> usage;
          m->GrowDecodeRounds(ids, held, rounds, usage);
          ASSERT_EQ(static_cast<int64_t>(usage.size()), rounds);
          for (int64_t j = 1; j <= rounds; ++j) {
            for (size_t i = 0; i < ids.size(); ++i) ASSERT_TRUE(ref.Grow(ids[i], held[i] + j));
            const auto [allocated, live, cached_free] = ref.State();
            const KvUsage& u = usage[static_cast<size_t>(j - 1)];
            ASSERT_EQ(u.allocated_bytes, allocated * block_tokens * kBytesPerToken);
            ASSERT_EQ(u.live_bytes, live * kBytesPerToken);
            ASSERT_EQ(u.cached_bytes, cached_free * block_tokens * kBytesPerToken);
          }
          for (auto& [id, l] : admitted) l.tokens += rounds;
        } else if (op <= 6 && !admitted.empty()) {
          auto it = admitted.begin();
          std::advance(it, pick(0, static_cast<int64_t>(admitted.size()) - 1));
          Live& l = it->second;
          if (pick(0, 1) == 0) {
            const int64_t to = std::min(max_len, l.tokens + pick(0, 3 * block_tokens));
            const bool grown = ref.Grow(it->first, to);
            ASSERT_EQ(m->Grow(it->first, to, GrowthPhase::kDecode), grown) << "step " << step;
            if (grown) l.tokens = to;
          } else {
            l.computed = std::min(l.tokens, l.computed + pick(0, 40 * block_tokens));
            m->OnTokensComputed(it->first, l.computed);
            ref.Computed(it->first, l.computed);
          }
        } else if (!admitted.empty()) {
          auto it = admitted.begin();
          std::advance(it, pick(0, static_cast<int64_t>(admitted.size()) - 1));
          const int64_t id = it->first;
          const Live l = it->second;
          admitted.erase(it);
          if (pick(0, 2) == 0) {
            m->Release(id);
            ref.ReleaseWritten(id, std::numeric_limits<int64_t>::max());
          } else {  // preempted: written up to what it computed; waits to be readmitted
            m->ReleaseWritten(id, l.computed);
            ref.ReleaseWritten(id, l.computed);
            m->Identify(id, prefixes[id]);
            ref.Identify(id, prefixes[id]);
            waiting[id] = std::min(max_len, l.tokens + 1);
          }
        }
        const KvUsage u = m->Usage();
        const auto [allocated, live, cached_free] = ref.State();
        ASSERT_EQ(u.allocated_bytes, allocated * block_tokens * kBytesPerToken) << "step " << step;
        ASSERT_EQ(u.live_bytes, live * kBytesPerToken) << "step " << step;
        ASSERT_EQ(u.cached_bytes, cached_free * block_tokens * kBytesPerToken) << "step " << step;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// vAttention page-group boundaries.

TEST(VAttentionKvManager, OnePagesWorthOfTokensTakesOnePageGroup) {
  // 64 KiB pages: 65536 / 2048 = 32 tokens per page; a group is one page in each of
  // the 2 x 4 K/V buffers = 8 x 64 KiB = 512 KiB.
  VAttentionKvConfig config;
  config.page_bytes = 64 * kKiB;
  config.backend = VmmBackend::kUvm;  // the stock driver maps 2 MiB pages only
  const int64_t tokens_per_page = config.page_bytes / kBytesPerTokenPerLayer;
  ASSERT_EQ(tokens_per_page, 32);
  auto m = NewVAttentionKvManager(Geometry(640, 256), config);
  ASSERT_TRUE(m->Admit(1, tokens_per_page, tokens_per_page + 1));
  EXPECT_EQ(m->Usage().allocated_bytes, 2 * kLayers * 64 * kKiB);
  EXPECT_EQ(m->Usage().allocated_bytes, 512 * kKiB);
}

TEST(VAttentionKvManager, OnePagePlusOneTokenTakesTwoPageGroups) {
  VAttentionKvConfig config;
  config.page_bytes = 64 * kKiB;
  config.backend = VmmBackend::kUvm;  // the stock driver maps 2 MiB pages only
  auto m = NewVAttentionKvManager(Geometry(640, 256), config);
  ASSERT_TRUE(m->Admit(1, 33, 33));
  EXPECT_EQ(m->Usage().allocated_bytes, 2 * (2 * kLayers * 64 * kKiB));
  EXPECT_EQ(m->Usage().live_bytes, 33 * kBytesPerToken);
}

TEST(VAttentionKvManager, GrowingOneTokenPastAPageTakesASecondGroup) {
  VAttentionKvConfig config;
  config.page_bytes = 64 * kKiB;
  config.backend = VmmBackend::kUvm;  // the stock driver maps 2 MiB pages only
  auto m = NewVAttentionKvManager(Geometry(640, 256), config);
  ASSERT_TRUE(m->Admit(1, 32, 64));
  EXPECT_EQ(m->Usage().allocated_bytes, 512 * kKiB);
  ASSERT_TRUE(m->Grow(1, 33, GrowthPhase::kDecode));
  EXPECT_EQ(m->Usage().allocated_bytes, 2 * 512 * kKiB);
}

TEST(VAttentionKvManager, Llama3_8BAtTp1Holds1024TokensPerTwoMiBPage) {
  // Llama-3-8B: 32 layers, 8 KV heads of 128, bf16. One of K or V of one token in
  // one layer = 8 x 128 x 2 = 2048 bytes; 2 MiB / 2048 = 1024 tokens per page; a page
  // group = 2 x 32 x 2 MiB = 128 MiB.
  KvGeometry g;
  g.num_layers = 32;
  g.bytes_per_token_per_layer = 8 * 128 * 2;
  g.bytes_per_token = 2 * g.num_layers * g.bytes_per_token_per_layer;  // 128 KiB
  g.capacity_bytes = int64_t{40} * 1024 * kMiB;                        // 40 GiB
  g.max_model_len = 8192;
  ASSERT_EQ(g.bytes_per_token, 128 * kKiB);
  VAttentionKvConfig config;
  config.page_bytes = 2 * kMiB;
  const int64_t tokens_per_page = config.page_bytes / g.bytes_per_token_per_layer;
  ASSERT_EQ(tokens_per_page, 1024);
  const int64_t group_bytes = 2 * g.num_layers * config.page_bytes;
  ASSERT_EQ(group_bytes, 128 * kMiB);

  auto one = NewVAttentionKvManager(g, config);
  ASSERT_TRUE(one->Admit(1, 1024, 1024));
  EXPECT_EQ(one->Usage().allocated_bytes, group_bytes);
  // 1024 tokens x 128 KiB fill the 128 MiB group exactly: no waste.
  EXPECT_EQ(one->Usage().live_bytes, group_bytes);

  auto two = NewVAttentionKvManager(g, config);
  ASSERT_TRUE(two->Admit(1, 1025, 1025));
  EXPECT_EQ(two->Usage().allocated_bytes, 2 * group_bytes);
}

}  // namespace
}  // namespace kvsim
