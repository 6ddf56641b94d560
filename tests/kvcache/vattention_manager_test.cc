// vAttention specifics with hand-computed costs: page-group mapping at admission
// and growth, overlap of decode growth, reclamation (deferred, per iteration,
// on demand), slots and watermark, the two VMM backends, and kvsim's what-if of
// prefix sharing at page-group granularity.
//
// Geometry: 4 layers and 32 tokens per page under both backends, so that token
// counts, page groups and call counts read the same:
//  - stock (CUDA's driver): 2 MiB pages; ONE of K or V of one token in one layer =
//    2 MiB / 32 = 64 KiB, a token of K and V in every layer = 2 x 4 x 64 KiB =
//    512 KiB, a page group (one page in each of the 2 x 4 K/V buffers) = 8 x 2 MiB
//    = 16 MiB = 32 tokens x 512 KiB. Mapping a group: 8 x (map + set access);
//    unmapping: 8 x unmap.
//  - uvm (vAttention's modified driver): 64 KiB pages; 64 KiB / 32 = 2 KiB per token
//    per layer, 16 KiB per token, 512 KiB per group. Mapping a group: 8 x 9 us;
//    unmapping: free, no call.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>

#include "sim/core/check.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {
namespace {

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * 1024;
constexpr int64_t kLayers = 4;
constexpr int64_t kTokensPerPage = 32;
constexpr int64_t kCallsPerGroup = 2 * kLayers;  // 8 pages per group, one call each

// Stock backend.
constexpr int64_t kPageBytes = 2 * kMiB;
constexpr int64_t kBytesPerTokenPerLayer = kPageBytes / kTokensPerPage;   // 64 KiB
constexpr int64_t kBytesPerToken = 2 * kLayers * kBytesPerTokenPerLayer;  // 512 KiB
constexpr int64_t kGroupBytes = 2 * kLayers * kPageBytes;                 // 16 MiB

// uvm backend.
constexpr int64_t kUvmPageBytes = 64 * kKiB;
constexpr int64_t kUvmBytesPerTokenPerLayer = kUvmPageBytes / kTokensPerPage;   // 2 KiB
constexpr int64_t kUvmBytesPerToken = 2 * kLayers * kUvmBytesPerTokenPerLayer;  // 16 KiB
constexpr int64_t kUvmGroupBytes = 2 * kLayers * kUvmPageBytes;                 // 512 KiB

constexpr Nanos kMap{1'000};
constexpr Nanos kSetAccess{20'000};
constexpr Nanos kUnmap{15'000};
constexpr Nanos kMapGroup = kCallsPerGroup * (kMap + kSetAccess);  // 8 x 21 us = 168 us
constexpr Nanos kUnmapGroup = kCallsPerGroup * kUnmap;             // 8 x 15 us = 120 us
constexpr Nanos kUvmMapGroup = kCallsPerGroup * Nanos(9'000);      // 8 x 9 us = 72 us

static_assert(kBytesPerTokenPerLayer == 64 * kKiB);
static_assert(kGroupBytes == 16 * kMiB);
static_assert(kUvmBytesPerTokenPerLayer == 2 * kKiB);
static_assert(kUvmGroupBytes == 512 * kKiB);
static_assert(kMapGroup == Nanos(168'000));
static_assert(kUnmapGroup == Nanos(120'000));
static_assert(kUvmMapGroup == Nanos(72'000));

// A cache of `groups` page groups (32 tokens each) for `backend`'s page size.
KvGeometry Geometry(int64_t groups, int64_t max_model_len,
                    VmmBackend backend = VmmBackend::kStock) {
  const bool uvm = backend == VmmBackend::kUvm;
  KvGeometry g;
  g.capacity_bytes = groups * (uvm ? kUvmGroupBytes : kGroupBytes);
  g.bytes_per_token = uvm ? kUvmBytesPerToken : kBytesPerToken;
  g.bytes_per_token_per_layer = uvm ? kUvmBytesPerTokenPerLayer : kBytesPerTokenPerLayer;
  g.num_layers = kLayers;
  g.max_model_len = max_model_len;
  return g;
}

// Stock: 2 MiB pages at kMap / kSetAccess / kUnmap. uvm: 64 KiB pages at the
// default uvm map latency (the paper's 9 us).
VAttentionKvConfig Config(bool overlap, bool deferred_reclaim,
                          VmmBackend backend = VmmBackend::kStock) {
  VAttentionKvConfig c;
  c.backend = backend;
  c.page_bytes = backend == VmmBackend::kUvm ? kUvmPageBytes : kPageBytes;
  c.overlap = overlap;
  c.deferred_reclaim = deferred_reclaim;
  c.watermark = 0;
  c.map_latency = kMap;
  c.set_access_latency = kSetAccess;
  c.unmap_latency = kUnmap;
  return c;
}

// (synchronous ns, background ns, map calls, unmap calls)
std::tuple<int64_t, int64_t, int64_t, int64_t> Cost(Nanos sync, Nanos background, int64_t map_calls,
                                                    int64_t unmap_calls) {
  return {sync.count(), background.count(), map_calls, unmap_calls};
}

std::tuple<int64_t, int64_t, int64_t, int64_t> Cost(const KvStepCost& c) {
  return {c.synchronous.count(), c.background.count(), c.map_calls, c.unmap_calls};
}

// (capacity, allocated, live, cached) bytes. Allocated: page groups a request
// needs. Cached: page groups mapped but needed by none (on idle slots, or a busy
// slot's spare groups). Free = capacity - allocated - cached.
std::tuple<int64_t, int64_t, int64_t, int64_t> Fields(const KvUsage& u) {
  return {u.capacity_bytes, u.allocated_bytes, u.live_bytes, u.cached_bytes};
}

constexpr auto kNoCost = std::make_tuple(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0});

class VAttentionWithAndWithoutOverlap : public ::testing::TestWithParam<bool> {};

TEST_P(VAttentionWithAndWithoutOverlap, AdmissionMapsEveryPageGroupOfThePromptSynchronously) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(GetParam(), true));
  // 100 tokens: ceil(100 / 32) = 4 groups = 32 map calls, 32 x 21 us = 672 us.
  ASSERT_TRUE(m->Admit(1, 100, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(672'000), Nanos(0), 4 * kCallsPerGroup, 0));
  EXPECT_EQ(Cost(Nanos(672'000), Nanos(0), 32, 0),
            Cost(4 * kMapGroup, Nanos(0), 4 * kCallsPerGroup, 0));
  EXPECT_EQ(m->Usage().allocated_bytes, 4 * kGroupBytes);
  EXPECT_EQ(m->Usage().live_bytes, 100 * kBytesPerToken);
}

TEST_P(VAttentionWithAndWithoutOverlap, TakeStepCostReportsTheWorkOnceThenNothing) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(GetParam(), true));
  ASSERT_TRUE(m->Admit(1, 32, 64));
  ASSERT_TRUE(m->Admit(2, 33, 64));
  // 1 + 2 groups since the last call.
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(3 * kMapGroup, Nanos(0), 3 * kCallsPerGroup, 0));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
}

TEST_P(VAttentionWithAndWithoutOverlap, GrowthWithinAPageMapsNothing) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(GetParam(), true));
  ASSERT_TRUE(m->Admit(1, 1, 64));
  m->TakeStepCost();
  for (int64_t t = 2; t <= 32; ++t) ASSERT_TRUE(m->Grow(1, t, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(m->Usage().allocated_bytes, kGroupBytes);
}

TEST_P(VAttentionWithAndWithoutOverlap, ChunkedPrefillGrowthIsMappedSynchronously) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(GetParam(), true));
  ASSERT_TRUE(m->Admit(1, 32, 200));
  m->TakeStepCost();
  // 32 -> 100 tokens: from 1 to 4 groups, 3 more = 24 calls = 504 us.
  ASSERT_TRUE(m->Grow(1, 100, GrowthPhase::kPrefill));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(3 * kMapGroup, Nanos(0), 3 * kCallsPerGroup, 0));
  EXPECT_EQ(3 * kMapGroup, Nanos(504'000));
}

INSTANTIATE_TEST_SUITE_P(Overlap, VAttentionWithAndWithoutOverlap, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "On" : "Off";
                         });

TEST(VAttentionKvManager, DecodeGrowthAcrossAPageIsMappedInTheBackgroundWithOverlap) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/true, true));
  ASSERT_TRUE(m->Admit(1, 32, 64));
  m->TakeStepCost();
  // 32 -> 33 tokens crosses into a second group: 8 calls, 168 us behind the iteration.
  ASSERT_TRUE(m->Grow(1, 33, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), Nanos(168'000), kCallsPerGroup, 0));
}

TEST(VAttentionKvManager, DecodeGrowthAcrossAPageStallsTheIterationWithoutOverlap) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/false, true));
  ASSERT_TRUE(m->Admit(1, 32, 64));
  m->TakeStepCost();
  ASSERT_TRUE(m->Grow(1, 33, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(168'000), Nanos(0), kCallsPerGroup, 0));
}

TEST(VAttentionKvManager, DefaultLatenciesChargeLlama3_8BAboutOnePointFiveMsPerPageGroup) {
  // Llama-3-8B, TP 1: 32 layers, 2048 bytes per token per layer, 2 MiB pages of 1024
  // tokens. A page group = 2 x 32 = 64 pages; at the default H100 latencies
  // (cuMemMap 0.65 us + cuMemSetAccess 22.16 us) it costs 64 x 22.81 us = 1459.84 us.
  KvGeometry g;
  g.num_layers = 32;
  g.bytes_per_token_per_layer = 2048;
  g.bytes_per_token = 2 * 32 * 2048;
  g.capacity_bytes = int64_t{40} * 1024 * kMiB;
  g.max_model_len = 8192;
  VAttentionKvConfig config;  // defaults: 2 MiB pages, overlap on
  config.overlap = false;
  auto m = NewVAttentionKvManager(g, config);
  ASSERT_TRUE(m->Admit(1, 1024, 2048));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(1'459'840), Nanos(0), 64, 0));
  ASSERT_TRUE(m->Grow(1, 1025, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(64 * (650 + 22'160)), Nanos(0), 64, 0));
}

TEST(VAttentionKvManager, FinishedRequestsPagesAreReusedByTheNextAdmissionForFree) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(true, /*deferred_reclaim=*/true));
  ASSERT_TRUE(m->Admit(1, 100, 200));  // 4 groups
  m->TakeStepCost();
  m->Release(1);
  // The 4 groups stay mapped to the now idle slot: cached, allocated to no request;
  // releasing costs nothing.
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, int64_t{0}, int64_t{0}, 4 * kGroupBytes));

  // A 90-token request (3 groups) takes that slot: no mapping. Its request needs 3
  // of the slot's 4 groups: 3 are allocated, the fourth stays cached (free capacity).
  ASSERT_TRUE(m->Admit(2, 90, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 3 * kGroupBytes,
                                                90 * kBytesPerToken, 1 * kGroupBytes));
  // Growing into its fourth group uses the page already mapped.
  ASSERT_TRUE(m->Grow(2, 128, GrowthPhase::kPrefill));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, 4 * kGroupBytes, 128 * kBytesPerToken, int64_t{0}));
  // The fifth group is new: one group of mapping.
  ASSERT_TRUE(m->Grow(2, 129, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), kMapGroup, kCallsPerGroup, 0));
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, 5 * kGroupBytes, 129 * kBytesPerToken, int64_t{0}));
}

TEST(VAttentionKvManager, AShortFreePoolIsRefilledByUnmappingIdleSlots) {
  // 8 groups = 256 tokens.
  auto m = NewVAttentionKvManager(Geometry(8, 256), Config(true, /*deferred_reclaim=*/true));
  ASSERT_TRUE(m->Admit(1, 128, 128));  // 4 groups
  ASSERT_TRUE(m->Admit(2, 128, 128));  // 4 groups: the pool is empty
  m->Release(1);
  m->Release(2);
  m->TakeStepCost();
  // Both idle slots keep their 4 groups: all 8 cached, none allocated.
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(8 * kGroupBytes, int64_t{0}, int64_t{0}, 8 * kGroupBytes));

  // 256 tokens = 8 groups: 4 already mapped in the slot it gets, 4 unmapped from
  // the other idle slot and mapped again. Admission is synchronous:
  // 4 x 120 us + 4 x 168 us = 480 + 672 = 1152 us.
  ASSERT_TRUE(m->Admit(3, 256, 256));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(1'152'000), Nanos(0), 4 * kCallsPerGroup, 4 * kCallsPerGroup));
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(8 * kGroupBytes, 8 * kGroupBytes, 256 * kBytesPerToken, int64_t{0}));
}

TEST(VAttentionKvManager, ReclaimForDecodeGrowthRunsInTheBackgroundWithOverlap) {
  auto m = NewVAttentionKvManager(Geometry(8, 256), Config(/*overlap=*/true, true));
  ASSERT_TRUE(m->Admit(1, 128, 256));  // 4 groups
  ASSERT_TRUE(m->Admit(2, 128, 256));  // 4 groups: the pool is empty
  m->Release(2);
  m->TakeStepCost();
  // Request 1's slot holds 4 groups (allocated); request 2's idle slot 4 (cached).
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kGroupBytes, 4 * kGroupBytes,
                                                128 * kBytesPerToken, 4 * kGroupBytes));
  // 128 -> 129 needs a fifth group, unmapped from the idle slot of request 2 and
  // mapped to request 1: 120 us + 168 us = 288 us, all hidden.
  ASSERT_TRUE(m->Grow(1, 129, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(0), Nanos(288'000), kCallsPerGroup, kCallsPerGroup));
  // 5 groups allocated to request 1, 3 still cached in the idle slot: all 8 mapped.
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kGroupBytes, 5 * kGroupBytes,
                                                129 * kBytesPerToken, 3 * kGroupBytes));
}

TEST(VAttentionKvManager, SparePagesOfARunningRequestAreUnmappedWhenNoIdleSlotHasAny) {
  auto m = NewVAttentionKvManager(Geometry(8, 256), Config(true, true));
  ASSERT_TRUE(m->Admit(1, 256, 256));  // all 8 groups
  m->Release(1);
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(8 * kGroupBytes, int64_t{0}, int64_t{0}, 8 * kGroupBytes));
  ASSERT_TRUE(m->Admit(2, 32, 64));  // reuses the slot: needs 1 group of its 8
  m->TakeStepCost();
  // The request needs 1 group (allocated); the slot's 7 spare groups stay cached.
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kGroupBytes, 1 * kGroupBytes,
                                                32 * kBytesPerToken, 7 * kGroupBytes));
  // 64 tokens = 2 groups for a fresh slot; the pool is empty and no idle slot holds
  // pages, so 2 of request 2's 7 spare groups are unmapped: 2 x (120 + 168) = 576 us.
  ASSERT_TRUE(m->Admit(3, 64, 64));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(576'000), Nanos(0), 2 * kCallsPerGroup, 2 * kCallsPerGroup));
  // Request 2's slot keeps 6 groups (1 needed, 5 cached), request 3's has 2:
  // 3 allocated, 5 cached, all 8 mapped.
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kGroupBytes, 3 * kGroupBytes,
                                                (32 + 64) * kBytesPerToken, 5 * kGroupBytes));
}

// ---- Reclamation without deferred reclamation ---------------------------------
// (repo vattention/vattention.cu: step_sync with eager_reclaim when nothing
// overlaps; do_reclaim_pages on the background thread when it does.)

TEST(VAttentionKvManager, WithoutDeferredReclaimOrOverlapTheNextIterationUnmapsIdlePagesAtOnce) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/false, false));
  ASSERT_TRUE(m->Admit(1, 100, 200));  // 4 groups
  m->TakeStepCost();
  m->Release(1);
  // Releasing costs nothing yet: the 4 groups wait, cached, on the idle slot.
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, int64_t{0}, int64_t{0}, 4 * kGroupBytes));
  // The next iteration unmaps them all before it runs: 4 groups x 8 calls x 15 us =
  // 480 us, synchronous.
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(480'000), Nanos(0), 0, 4 * kCallsPerGroup));
  EXPECT_EQ(4 * kUnmapGroup, Nanos(480'000));
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, int64_t{0}, int64_t{0}, int64_t{0}));
  // The next request maps its pages again: 3 groups.
  ASSERT_TRUE(m->Admit(2, 90, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(3 * kMapGroup, Nanos(0), 3 * kCallsPerGroup, 0));
}

TEST(VAttentionKvManager, WithoutDeferredReclaimAnAdmissionBeforeTheReclaimReusesPagesInPlace) {
  // The repo's alloc_new_batch_idx picks the best-fitting idle slot, pages and all,
  // whatever deferred_reclaim says; step_sync then reclaims only idle slots.
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/false, false));
  ASSERT_TRUE(m->Admit(1, 100, 200));  // 4 groups
  m->TakeStepCost();
  m->Release(1);
  // 90 tokens need 3 groups; the released slot has 4 mapped: nothing to map.
  ASSERT_TRUE(m->Admit(2, 90, 200));
  m->OnIterationStart();
  // Its fourth group is a busy slot's spare, not an idle slot's: it stays cached.
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 3 * kGroupBytes,
                                                90 * kBytesPerToken, 1 * kGroupBytes));
}

TEST(VAttentionKvManager, WithoutDeferredReclaimEachIterationUnmapsOneGroupInTheBackground) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/true, false));
  ASSERT_TRUE(m->Admit(1, 100, 200));  // 4 groups
  m->TakeStepCost();
  m->Release(1);
  // Iteration k (1..4) unmaps the slot's k-th group behind the previous iteration:
  // 8 calls x 15 us = 120 us of background work; the free pool grows by one group
  // (512 KiB x 32 = 16 MiB) per iteration while the cached groups drop by one.
  for (int64_t k = 1; k <= 4; ++k) {
    m->OnIterationStart();
    EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), Nanos(120'000), 0, kCallsPerGroup))
        << "iteration " << k;
    const KvUsage u = m->Usage();
    EXPECT_EQ(Fields(u),
              std::make_tuple(20 * kGroupBytes, int64_t{0}, int64_t{0}, (4 - k) * kGroupBytes))
        << "iteration " << k;
    EXPECT_EQ(u.capacity_bytes - u.allocated_bytes - u.cached_bytes, (16 + k) * kGroupBytes)
        << "free after iteration " << k;
  }
  // Nothing is left to reclaim.
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
}

TEST(VAttentionKvManager, TheBackgroundReclaimSkipsAnIterationWhoseDecodeGrowthMappedAPage) {
  // do_kvcache_memory_management returns before do_reclaim_pages when it just
  // mapped pages for the next step.
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/true, false));
  ASSERT_TRUE(m->Admit(1, 32, 64));    // 1 group
  ASSERT_TRUE(m->Admit(2, 100, 200));  // 4 groups
  m->Release(2);
  m->OnIterationStart();
  m->TakeStepCost();  // the admissions, and the first of request 2's 4 groups
  // 32 -> 33 tokens maps request 1's second group (168 us behind the iteration,
  // from the free pool of 20 - 1 - 3 = 16 groups): no reclamation this iteration.
  ASSERT_TRUE(m->Grow(1, 33, GrowthPhase::kDecode));
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), kMapGroup, kCallsPerGroup, 0));
  EXPECT_EQ(m->Usage().cached_bytes, 3 * kGroupBytes);
  // An iteration that maps nothing reclaims the next group: 120 us.
  ASSERT_TRUE(m->Grow(1, 34, GrowthPhase::kDecode));
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), kUnmapGroup, 0, kCallsPerGroup));
  EXPECT_EQ(m->Usage().cached_bytes, 2 * kGroupBytes);
}

TEST(VAttentionKvManager, ANeedLargerThanTheFreePoolReclaimsTheRestSynchronously) {
  // 8 groups = 256 tokens.
  auto m = NewVAttentionKvManager(Geometry(8, 256), Config(/*overlap=*/true, false));
  ASSERT_TRUE(m->Admit(1, 128, 128));  // 4 groups, slot 0
  ASSERT_TRUE(m->Admit(2, 128, 128));  // 4 groups, slot 1: the pool is empty
  m->Release(1);
  m->Release(2);
  m->TakeStepCost();
  // One iteration reclaims one group (of slot 1: fewest mapped, ties to the higher
  // slot): 1 group free, 7 cached (slot 0: 4, slot 1: 3).
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), kUnmapGroup, 0, kCallsPerGroup));
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(8 * kGroupBytes, int64_t{0}, int64_t{0}, 7 * kGroupBytes));
  // 256 tokens = 8 groups: slot 0's 4, the free one, and 3 unmapped from slot 1 at
  // once, before the prefill: 3 x 120 us + 4 x 168 us = 360 + 672 = 1032 us.
  ASSERT_TRUE(m->Admit(3, 256, 256));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(1'032'000), Nanos(0), 4 * kCallsPerGroup, 3 * kCallsPerGroup));
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(8 * kGroupBytes, 8 * kGroupBytes, 256 * kBytesPerToken, int64_t{0}));
}

TEST(VAttentionKvManager, WithDeferredReclaimIterationsReclaimNothing) {
  auto m = NewVAttentionKvManager(Geometry(20, 640), Config(/*overlap=*/true, true));
  ASSERT_TRUE(m->Admit(1, 100, 200));
  m->Release(1);
  m->TakeStepCost();
  for (int k = 0; k < 3; ++k) m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(m->Usage().cached_bytes, 4 * kGroupBytes);
}

TEST(VAttentionKvManager, MaxSlotsLimitsConcurrentRequests) {
  VAttentionKvConfig config = Config(true, true);
  config.max_slots = 2;
  auto m = NewVAttentionKvManager(Geometry(20, 640), config);
  ASSERT_TRUE(m->Admit(1, 10, 10));
  ASSERT_TRUE(m->Admit(2, 10, 10));
  m->TakeStepCost();
  const KvUsage before = m->Usage();
  // 18 free groups, but no free slot.
  EXPECT_FALSE(m->Admit(3, 10, 10));
  EXPECT_EQ(Fields(m->Usage()), Fields(before));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  m->Release(1);
  EXPECT_TRUE(m->Admit(3, 10, 10));
  EXPECT_FALSE(m->Admit(4, 10, 10));
}

TEST(VAttentionKvManager, AdmissionKeepsTheWatermarkFreeButGrowthMayUseIt) {
  // 200 groups; watermark 0.01 x 200 = 2 groups kept free at admission.
  VAttentionKvConfig config = Config(true, true);
  config.watermark = 0.01;
  const KvGeometry g = Geometry(200, 8192);
  EXPECT_EQ(NewVAttentionKvManager(g, config)->MaxAdmissibleTokens(), (200 - 2) * 32);  // 6336

  // 199 groups (6337 tokens) would leave 1 free: refused.
  EXPECT_FALSE(NewVAttentionKvManager(g, config)->Admit(1, 198 * 32 + 1, 198 * 32 + 1));

  auto m = NewVAttentionKvManager(g, config);
  ASSERT_TRUE(m->Admit(1, 198 * 32, 8192));  // leaves exactly 2
  EXPECT_FALSE(m->Admit(2, 1, 1));           // would leave 1
  EXPECT_TRUE(m->Grow(1, 200 * 32, GrowthPhase::kDecode));
  EXPECT_EQ(m->Usage().allocated_bytes, m->Usage().capacity_bytes);
  EXPECT_FALSE(m->Grow(1, 200 * 32 + 1, GrowthPhase::kDecode));
}

TEST(VAttentionKvManager, AdmissionCountsTheChosenSlotsSparePagesAsFree) {
  // 20 groups; watermark 0.06 x 20 = 1.2 -> 1 group kept free at admission.
  VAttentionKvConfig config = Config(true, /*deferred_reclaim=*/true);
  config.watermark = 0.06;
  auto m = NewVAttentionKvManager(Geometry(20, 256), config);
  ASSERT_TRUE(m->Admit(1, 256, 256));                  // 8 groups
  ASSERT_TRUE(m->Admit(2, 256, 256));                  // 8 groups
  ASSERT_TRUE(m->Admit(3, 96, 128));                   // 3 groups, leaving the 1-group watermark
  ASSERT_TRUE(m->Grow(3, 128, GrowthPhase::kDecode));  // growth takes the last group
  m->Release(1);
  // Requests 2 and 3 hold 8 + 4 = 12 groups; request 1's idle slot caches 8.
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 12 * kGroupBytes,
                                                (256 + 128) * kBytesPerToken, 8 * kGroupBytes));
  // Free capacity = free pool (0) + mapped-but-unneeded groups (request 1's 8) = 8.
  // A one-token request needs 1 group and leaves 7 >= 1 free; the slot it is given
  // already holds 8 mapped groups, so nothing needs mapping.
  m->TakeStepCost();
  EXPECT_TRUE(m->Admit(4, 1, 1));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  // Allocated: 8 + 4 + 1 = 13 groups needed; its slot's 7 spare groups stay cached.
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 13 * kGroupBytes,
                                                (256 + 128 + 1) * kBytesPerToken, 7 * kGroupBytes));
}

// ---- VMM backends ------------------------------------------------------------

TEST(VAttentionKvManager, UvmMapsAPageGroupWithTwoCallsPerLayerOfNineMicroseconds) {
  auto m = NewVAttentionKvManager(Geometry(20, 640, VmmBackend::kUvm),
                                  Config(/*overlap=*/true, true, VmmBackend::kUvm));
  EXPECT_EQ(m->vmm_backend(), VmmBackend::kUvm);
  EXPECT_EQ(m->page_bytes(), 64 * kKiB);
  // 100 tokens: 4 groups = 32 calls of 9 us = 288 us, before the prefill.
  ASSERT_TRUE(m->Admit(1, 100, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(288'000), Nanos(0), 4 * kCallsPerGroup, 0));
  EXPECT_EQ(4 * kUvmMapGroup, Nanos(288'000));
  EXPECT_EQ(m->Usage().allocated_bytes, 4 * kUvmGroupBytes);
  EXPECT_EQ(m->Usage().live_bytes, 100 * kUvmBytesPerToken);
  // 128 -> 129 tokens: a fifth group, 2 x 4 x 9 us = 72 us behind the iteration.
  ASSERT_TRUE(m->Grow(1, 129, GrowthPhase::kDecode));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(0), Nanos(72'000), kCallsPerGroup, 0));
}

TEST(VAttentionKvManager, UvmReclaimsPagesWithoutADriverCall) {
  // 8 groups = 256 tokens, as AShortFreePoolIsRefilledByUnmappingIdleSlots.
  auto m = NewVAttentionKvManager(Geometry(8, 256, VmmBackend::kUvm),
                                  Config(true, /*deferred_reclaim=*/true, VmmBackend::kUvm));
  ASSERT_TRUE(m->Admit(1, 128, 128));
  ASSERT_TRUE(m->Admit(2, 128, 128));
  m->Release(1);
  m->Release(2);
  m->TakeStepCost();
  // 8 groups: 4 already in the slot it gets, 4 taken back from the other idle slot
  // for free and mapped again: 4 x 72 us = 288 us, no unmap call.
  ASSERT_TRUE(m->Admit(3, 256, 256));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(288'000), Nanos(0), 4 * kCallsPerGroup, 0));
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kUvmGroupBytes, 8 * kUvmGroupBytes,
                                                256 * kUvmBytesPerToken, int64_t{0}));
}

TEST(VAttentionKvManager, UvmBackgroundReclamationFreesAGroupPerIterationAtNoCost) {
  auto m = NewVAttentionKvManager(Geometry(20, 640, VmmBackend::kUvm),
                                  Config(/*overlap=*/true, false, VmmBackend::kUvm));
  ASSERT_TRUE(m->Admit(1, 100, 200));  // 4 groups
  m->Release(1);
  m->TakeStepCost();
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(m->Usage().cached_bytes, 3 * kUvmGroupBytes);
}

TEST(VAttentionKvManager, StockCostsAreUnchangedByTheUvmLatency) {
  VAttentionKvConfig config = Config(/*overlap=*/false, true);
  config.uvm_map_latency = Nanos(1);  // not used by the stock backend
  auto m = NewVAttentionKvManager(Geometry(20, 640), config);
  EXPECT_EQ(m->vmm_backend(), VmmBackend::kStock);
  // 4 groups x 8 x (1 + 20) us = 672 us.
  ASSERT_TRUE(m->Admit(1, 100, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(Nanos(672'000), Nanos(0), 4 * kCallsPerGroup, 0));
}

TEST(VAttentionKvManager, TheDefaultUvmMapLatencyIsThePapersNineMicroseconds) {
  EXPECT_EQ(VAttentionKvConfig{}.uvm_map_latency, Nanos(9'000));
  EXPECT_EQ(kPaperUvmMapLatency, Nanos(9'000));
}

TEST(VmmBackend, AutoPicksUvmBelowTwoMiBAndStockFromTwoMiB) {
  EXPECT_EQ(AutoVmmBackend(64 * kKiB), VmmBackend::kUvm);
  EXPECT_EQ(AutoVmmBackend(128 * kKiB), VmmBackend::kUvm);
  EXPECT_EQ(AutoVmmBackend(256 * kKiB), VmmBackend::kUvm);
  EXPECT_EQ(AutoVmmBackend(2 * kMiB), VmmBackend::kStock);
  EXPECT_EQ(kVmmBackends.Name(VmmBackend::kStock), "stock");
  EXPECT_EQ(kVmmBackends.Name(VmmBackend::kUvm), "uvm");
}

TEST(VmmBackend, StockMapsOnlyMultiplesOfItsTwoMiBGranularity) {
  VAttentionKvConfig c;
  c.backend = VmmBackend::kStock;
  c.page_bytes = 2 * kMiB;
  EXPECT_FALSE(CheckVmmBackend(c).has_value());
  c.page_bytes = 64 * kKiB;
  const std::optional<VmmConfigError> e = CheckVmmBackend(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->key, "page_bytes");
  EXPECT_EQ(e->what,
            "64 KiB pages need the uvm backend (vAttention's modified driver): the stock CUDA "
            "driver maps in multiples of its 2 MiB allocation granularity; set "
            "kv_cache.vmm.backend: uvm or page_bytes: 2MiB");
  EXPECT_THROW(NewVAttentionKvManager(Geometry(20, 640, VmmBackend::kUvm), c), InvariantError);
}

TEST(VmmBackend, UvmMapsOnly64To256KiBPages) {
  VAttentionKvConfig c;
  c.backend = VmmBackend::kUvm;
  for (const int64_t page : {64 * kKiB, 128 * kKiB, 256 * kKiB}) {
    c.page_bytes = page;
    EXPECT_FALSE(CheckVmmBackend(c).has_value()) << page;
  }
  // The modified driver has no 2 MiB pages: vAttention sends 2 MiB to the stock path.
  c.page_bytes = 2 * kMiB;
  const std::optional<VmmConfigError> e = CheckVmmBackend(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->key, "vmm.backend");
  EXPECT_NE(e->what.find("not 2 MiB"), std::string::npos) << e->what;
  EXPECT_THROW(NewVAttentionKvManager(Geometry(20, 640), c), InvariantError);
}

TEST(VmmBackend, TheCaveatNamesThePapersUvmCostUnlessTheConfigSetsOne) {
  VAttentionKvConfig uvm;
  uvm.backend = VmmBackend::kUvm;
  uvm.page_bytes = 64 * kKiB;
  EXPECT_EQ(VmmCostCaveat(uvm),
            "kv_cache.vmm: uvm backend (vAttention's modified driver) map cost 9 us per page is "
            "the paper's figure, not measured on this GPU");
  uvm.uvm_map_latency = Nanos(12'000);  // the user's own figure
  EXPECT_EQ(VmmCostCaveat(uvm), "");
  EXPECT_EQ(VmmCostCaveat(VAttentionKvConfig{}), "");  // stock
}

// ---- Prefix caching: whole page groups shared between requests' ranges ----------
// (kvsim's what-if: the vAttention paper and repo share no prefixes.) Pages of 32
// tokens: a group is whole once 32 of its tokens are computed.

// `groups` page groups, `slots` slots, no watermark, prefix caching on.
std::unique_ptr<KvCacheManager> Caching(int64_t groups, int64_t slots,
                                        VmmBackend backend = VmmBackend::kStock,
                                        bool overlap = true, bool deferred_reclaim = true) {
  VAttentionKvConfig c;
  static_cast<VAttentionKvConfig&>(c) = Config(overlap, deferred_reclaim, backend);
  c.max_slots = slots;
  c.prefix_caching = true;
  return NewVAttentionKvManager(Geometry(groups, 640, backend), c);
}

// Request `id` of content stream `stream` (a shared system prompt) of `tokens` tokens.
PrefixIdentity Stream(uint64_t stream, int64_t tokens, int64_t id) {
  PrefixIdentity p;
  p.stream = stream;
  p.stream_tokens = tokens;
  p.request_id = id;
  return p;
}

// A system prompt of 112 tokens: 3 whole pages (0-95) and 16 tokens of a fourth.
constexpr int64_t kSystemTokens = 112;

TEST(VAttentionPrefixCache, TwoRequestsShareThreeWholePageGroupsAndRecomputeThePartialPage) {
  auto m = Caching(20, 4);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  m->Identify(2, Stream(77, kSystemTokens, 2));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));  // 4 groups: 4 x 168 us
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(4 * kMapGroup, Nanos(0), 4 * kCallsPerGroup, 0));
  EXPECT_EQ(m->CachedPrefixTokens(2, kSystemTokens), 0);  // nothing computed yet
  ASSERT_TRUE(m->WantsComputedTokens());
  m->OnTokensComputed(1, kSystemTokens);  // pages ending at 32, 64, 96 are whole
  // Request 2 finds the 3 whole groups (96 tokens); the 16 tokens of the partial
  // fourth page are computed again, not copied.
  EXPECT_EQ(m->CachedPrefixTokens(2, kSystemTokens), 96);
  ASSERT_TRUE(m->Admit(2, kSystemTokens, 200));
  // It gets another slot (request 1 is running in the first) and maps the 3 cached
  // groups into its own range: 3 x 2 x 4 = 24 calls, the same per-page cost as
  // growth; the page it recomputes is one new group: 8 calls. All synchronous (at
  // admission, before the prefill): 32 x 21 us = 672 us.
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(672'000), Nanos(0), 3 * kCallsPerGroup + 1 * kCallsPerGroup, 0));
  // 4 + 1 groups held: the 3 shared count once. Live: 112 + 112 - 96 = 128 tokens.
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, 5 * kGroupBytes, 128 * kBytesPerToken, int64_t{0}));
}

TEST(VAttentionPrefixCache, SharedGroupsCountOnceAndUsageStaysWithinCapacity) {
  auto m = Caching(20, 4);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  m->Identify(2, Stream(77, kSystemTokens, 2));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));
  m->OnTokensComputed(1, kSystemTokens);
  ASSERT_TRUE(m->Admit(2, 150, 200));  // 5 groups: 3 shared, 2 its own
  // 4 + 2 groups; live 112 + 150 - 96 = 166 tokens.
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, 6 * kGroupBytes, 166 * kBytesPerToken, int64_t{0}));
  // Request 1 finishes: the shared groups stay allocated (request 2 reads them); its
  // partial page is spare, mapped to its idle slot: cached.
  m->Release(1);
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 5 * kGroupBytes,
                                                150 * kBytesPerToken, 1 * kGroupBytes));
  // Request 2 finishes: its fourth group (tokens 96-127) is whole but past the
  // stream, so its own content; its fifth is partial. Nothing allocated; 3 shared
  // + request 2's 2 + request 1's partial = 6 groups held for reuse.
  m->Release(2);
  const KvUsage u = m->Usage();
  EXPECT_EQ(Fields(u), std::make_tuple(20 * kGroupBytes, int64_t{0}, int64_t{0}, 6 * kGroupBytes));
  EXPECT_LE(u.allocated_bytes + u.cached_bytes, u.capacity_bytes);
  m->Identify(3, Stream(77, kSystemTokens, 3));
  EXPECT_EQ(m->CachedPrefixTokens(3, 200), 96);  // the stream's groups, not request 2's own
}

TEST(VAttentionPrefixCache, AReusedSlotsOwnCachedGroupsNeedNoMapping) {
  auto m = Caching(20, 4);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));
  m->Release(1);  // finished: its 3 whole groups cached, its partial page spare
  m->TakeStepCost();
  // Request 3 (150 tokens, 5 groups) finds the 3 groups in request 1's idle slot and
  // takes that slot: its first 3 pages are mapped there already and its fourth is
  // the slot's spare page, reused in place. Only the fifth is mapped: 168 us.
  m->Identify(3, Stream(77, kSystemTokens, 3));
  EXPECT_EQ(m->CachedPrefixTokens(3, 150), 96);
  ASSERT_TRUE(m->Admit(3, 150, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(kMapGroup, Nanos(0), kCallsPerGroup, 0));
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, 5 * kGroupBytes, 150 * kBytesPerToken, int64_t{0}));
}

TEST(VAttentionPrefixCache, ThePromptsLastTokenIsComputedAgainSoWholePagesFindOneGroupFewer) {
  auto m = Caching(20, 4);
  m->Identify(1, Stream(77, 96, 1));
  ASSERT_TRUE(m->Admit(1, 96, 200));
  m->OnTokensComputed(1, 96);  // 3 whole pages
  m->Identify(2, Stream(77, 96, 2));
  // A 96-token prompt: (96 - 1) / 32 = 2 groups, the third page is computed again
  // for the last token's logits. One more token and all 3 are found.
  EXPECT_EQ(m->CachedPrefixTokens(2, 96), 64);
  EXPECT_EQ(m->CachedPrefixTokens(2, 97), 96);
}

// Released groups join the LRU queue in release order, a request's last group
// first; the free pool is used before anything is evicted.
TEST(VAttentionPrefixCache, EvictionTakesTheLeastRecentlyReleasedGroupsAndARequestsLastFirst) {
  auto m = Caching(8, 4);
  m->Identify(1, Stream(1, 1000, 1));
  ASSERT_TRUE(m->Admit(1, 96, 200));  // stream 1: 3 whole groups
  m->Release(1);
  m->Identify(2, Stream(2, 1000, 2));
  ASSERT_TRUE(m->Admit(2, 96, 200));  // stream 2: 3 whole groups, in an empty slot
  m->Release(2);
  m->TakeStepCost();
  // Queue: stream 1's groups 3, 2, 1, then stream 2's 3, 2, 1; 2 groups free.
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(8 * kGroupBytes, int64_t{0}, int64_t{0}, 6 * kGroupBytes));
  // Request 3 (other content, 4 groups) takes an empty slot: the 2 free groups, then
  // evicts stream 1's groups 3 and 2, unmapping each from request 1's idle slot:
  // 4 x 168 + 2 x 120 = 912 us.
  ASSERT_TRUE(m->Admit(3, 128, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(912'000), Nanos(0), 4 * kCallsPerGroup, 2 * kCallsPerGroup));
  m->Identify(4, Stream(1, 1000, 4));
  EXPECT_EQ(m->CachedPrefixTokens(4, 97), 32);  // stream 1's first group is left
  m->Identify(5, Stream(2, 1000, 5));
  EXPECT_EQ(m->CachedPrefixTokens(5, 97), 96);  // stream 2 untouched
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kGroupBytes, 4 * kGroupBytes,
                                                128 * kBytesPerToken, 4 * kGroupBytes));
}

TEST(VAttentionPrefixCache, APreemptedRequestResumesOnItsCachedGroupsWithoutMappingThem) {
  auto m = Caching(20, 4);
  ASSERT_TRUE(m->Admit(1, 100, 200));  // its own content: 4 groups
  m->TakeStepCost();
  m->ReleaseWritten(1, 100);  // preempted with its prompt computed: 3 whole groups
  EXPECT_EQ(m->CachedPrefixTokens(1, 101), 96);
  // Re-admitted with one generated token more: its own idle slot maps the 3 groups
  // and its partial page (spare, reused in place): no mapping at all.
  ASSERT_TRUE(m->Admit(1, 101, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
  EXPECT_EQ(Fields(m->Usage()),
            std::make_tuple(20 * kGroupBytes, 4 * kGroupBytes, 101 * kBytesPerToken, int64_t{0}));
}

// One slot, so another request must take the preempted request's slot: its cached
// groups are unmapped from the range but keep their content, and are mapped again
// into the range when it resumes.
TEST(VAttentionPrefixCache, AResumedRequestMapsItsCachedGroupsBackAfterItsSlotWasTaken) {
  auto m = Caching(20, 1);
  ASSERT_TRUE(m->Admit(1, 100, 200));
  m->ReleaseWritten(1, 100);  // 3 whole groups cached, a spare partial page
  m->TakeStepCost();
  // Request 2 (64 tokens, 2 groups) takes the slot. The free pool covers it, so
  // request 1's groups at its pages 0 and 1 are unmapped, not overwritten:
  // 2 x 120 us, and 2 free groups mapped: 2 x 168 us.
  ASSERT_TRUE(m->Admit(2, 64, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(576'000), Nanos(0), 2 * kCallsPerGroup, 2 * kCallsPerGroup));
  EXPECT_EQ(m->CachedPrefixTokens(1, 101), 96);  // still cached
  // Held: request 2's 2 groups; request 1's 3 groups (2 mapped nowhere) and spare page.
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 2 * kGroupBytes,
                                                64 * kBytesPerToken, 4 * kGroupBytes));
  m->Release(2);  // its 2 whole groups cached
  // Request 1 resumes in the slot: request 2's groups are unmapped from pages 0 and 1
  // (kept) and request 1's mapped back; page 2 still maps its group and page 3 its
  // spare page. 2 x 120 + 2 x 168 = 576 us.
  ASSERT_TRUE(m->Admit(1, 101, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()),
            Cost(Nanos(576'000), Nanos(0), 2 * kCallsPerGroup, 2 * kCallsPerGroup));
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(20 * kGroupBytes, 4 * kGroupBytes,
                                                101 * kBytesPerToken, 2 * kGroupBytes));
  EXPECT_EQ(m->CachedPrefixTokens(2, 65), 64);  // request 2's content survives too
}

TEST(VAttentionPrefixCache, OnlyTheWrittenWholePagesOfAPartlyComputedRequestAreCached) {
  auto m = Caching(20, 4);
  ASSERT_TRUE(m->Admit(1, 100, 200));  // holds its 100-token prompt: 4 groups
  m->ReleaseWritten(1, 40);            // had computed 40 tokens: 1 whole page
  EXPECT_EQ(m->CachedPrefixTokens(1, 101), 32);
  // All 4 groups stay mapped to the idle slot (1 cached, 3 spare).
  EXPECT_EQ(m->Usage().cached_bytes, 4 * kGroupBytes);
}

TEST(VAttentionPrefixCache, CachedGroupsInUseTakeNothingFromTheFreePool) {
  auto m = Caching(6, 4);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  m->Identify(2, Stream(77, kSystemTokens, 2));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));  // 4 of 6 groups
  m->OnTokensComputed(1, kSystemTokens);
  // Request 2 shares the 3 cached groups (in use by request 1) and needs its own
  // groups past them: 160 tokens = 5 groups, 2 new: fits the 2 free ones.
  EXPECT_TRUE(m->CanAdmit(2, 160, 200));
  EXPECT_FALSE(m->CanAdmit(2, 161, 200));  // 6 groups, 3 new
  ASSERT_TRUE(m->Admit(2, 160, 200));
  EXPECT_EQ(m->Usage().allocated_bytes, 6 * kGroupBytes);
  EXPECT_EQ(m->Usage().live_bytes, (112 + 160 - 96) * kBytesPerToken);
}

TEST(VAttentionPrefixCache, UvmMapsEachSharedPageWithOneCallAndEvictsForFree) {
  auto m = Caching(8, 4, VmmBackend::kUvm);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  m->Identify(2, Stream(77, kSystemTokens, 2));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));
  m->OnTokensComputed(1, kSystemTokens);
  m->TakeStepCost();
  // 3 cached groups mapped into request 2's range, one call per page (24 calls),
  // and its partial page (8): 32 x 9 us = 288 us.
  ASSERT_TRUE(m->Admit(2, kSystemTokens, 200));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(4 * kUvmMapGroup, Nanos(0), 4 * kCallsPerGroup, 0));
  m->Release(1);
  m->Release(2);
  // Held: 3 shared groups (each mapped in both idle slots) and 2 spare partial pages;
  // 3 groups free. A 256-token request (8 groups) takes an empty slot, the 3 free
  // groups and all 5 held ones: evicting costs no call on uvm, even for groups
  // mapped in two ranges. 8 groups x 72 us = 576 us.
  ASSERT_TRUE(m->Admit(3, 256, 256));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(8 * kUvmMapGroup, Nanos(0), 8 * kCallsPerGroup, 0));
  EXPECT_EQ(m->CachedPrefixTokens(4, 200), 0);
  EXPECT_EQ(Fields(m->Usage()), std::make_tuple(8 * kUvmGroupBytes, 8 * kUvmGroupBytes,
                                                256 * kUvmBytesPerToken, int64_t{0}));
}

TEST(VAttentionPrefixCache, StockUnmapsAnEvictedGroupFromEveryRangeThatMapsIt) {
  auto m = Caching(8, 4);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  m->Identify(2, Stream(77, kSystemTokens, 2));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));
  m->OnTokensComputed(1, kSystemTokens);
  ASSERT_TRUE(m->Admit(2, kSystemTokens, 200));
  m->Release(1);
  m->Release(2);
  m->TakeStepCost();
  // As above on stock: the 2 spare pages are unmapped once each, the 3 shared groups
  // twice each (both idle slots map them): 8 group unmaps x 120 us; 8 groups mapped.
  ASSERT_TRUE(m->Admit(3, 256, 256));
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(8 * kMapGroup + 8 * kUnmapGroup, Nanos(0),
                                          8 * kCallsPerGroup, 8 * kCallsPerGroup));
}

TEST(VAttentionPrefixCache, WithoutDeferredReclaimIterationsUnmapSparePagesButKeepCachedOnes) {
  auto m = Caching(20, 4, VmmBackend::kStock, /*overlap=*/false, /*deferred_reclaim=*/false);
  ASSERT_TRUE(m->Admit(1, 100, 200));  // 3 whole groups and a partial page
  m->Release(1);
  m->TakeStepCost();
  // The partial page is spare: unmapped before the next iteration, 120 us. The 3
  // cached groups stay (a cache unmapped every iteration would keep nothing).
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), Cost(kUnmapGroup, Nanos(0), 0, kCallsPerGroup));
  EXPECT_EQ(m->Usage().cached_bytes, 3 * kGroupBytes);
  EXPECT_EQ(m->CachedPrefixTokens(1, 101), 96);
  m->OnIterationStart();
  EXPECT_EQ(Cost(m->TakeStepCost()), kNoCost);
}

TEST(VAttentionPrefixCache, WithoutPrefixCachingNothingIsKeptForOtherRequests) {
  VAttentionKvConfig c;
  static_cast<VAttentionKvConfig&>(c) = Config(true, true);
  c.prefix_caching = false;
  auto m = NewVAttentionKvManager(Geometry(20, 640), c);
  m->Identify(1, Stream(77, kSystemTokens, 1));
  ASSERT_TRUE(m->Admit(1, kSystemTokens, 200));
  EXPECT_FALSE(m->WantsComputedTokens());
  m->Release(1);
  m->Identify(2, Stream(77, kSystemTokens, 2));
  EXPECT_EQ(m->CachedPrefixTokens(2, 200), 0);
}

// Random admissions of a few shared streams (and of own content), growth, computed
// tokens, preemption and resumption, releases: after every operation the usage
// invariants hold, CanAdmit foretells Admit, refused operations change nothing, and
// every call costs its latency.
class VAttentionPrefixCacheRandom : public ::testing::TestWithParam<std::tuple<VmmBackend, int>> {};

TEST_P(VAttentionPrefixCacheRandom, KeepsTheUsageInvariantsUnderSharingAndEviction) {
  const auto [backend, mode] = GetParam();
  const bool overlap = mode != 1, deferred = mode != 2;
  const int64_t groups = 24, slots = backend == VmmBackend::kUvm ? 16 : 4;
  auto m = Caching(groups, slots, backend, overlap, deferred);
  const int64_t group_bytes = backend == VmmBackend::kUvm ? kUvmGroupBytes : kGroupBytes;
  const int64_t token_bytes = backend == VmmBackend::kUvm ? kUvmBytesPerToken : kBytesPerToken;
  const Nanos map_cost = backend == VmmBackend::kUvm ? Nanos(9'000) : kMap + kSetAccess;
  struct Live {
    int64_t tokens, computed, hits;
  };
  std::map<int64_t, Live> live;
  std::map<int64_t, int64_t> preempted;  // id -> tokens to resume with
  std::map<int64_t, PrefixIdentity> identity;
  std::mt19937_64 rng(20250101);
  auto uniform = [&rng](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  int64_t next_id = 1, hit_tokens = 0, refused = 0, evicting = 0;
  for (int op = 0; op < 6000; ++op) {
    const KvUsage before = m->Usage();
    const int64_t r = uniform(0, 99);
    bool accepted = true;
    if (live.empty() || r < 30) {
      // Admit a new request or resume a preempted one.
      int64_t id = 0, tokens = 0;
      if (!preempted.empty() && uniform(0, 2) == 0) {
        id = preempted.begin()->first;
        tokens = preempted.begin()->second;
      } else {
        id = next_id++;
        tokens = uniform(1, 200);
        const int64_t stream = uniform(0, 3);  // 0: its own content
        identity[id] = Stream(static_cast<uint64_t>(stream), stream == 0 ? 0 : 160, id);
      }
      m->Identify(id, identity[id]);
      const int64_t cached = m->CachedPrefixTokens(id, tokens);
      ASSERT_EQ(cached % kTokensPerPage, 0);
      ASSERT_LE(cached, ((tokens - 1) / kTokensPerPage) * kTokensPerPage);
      const bool can = m->CanAdmit(id, tokens, 256);
      ASSERT_EQ(Cost(m->TakeStepCost()), kNoCost);
      accepted = m->Admit(id, tokens, 256);
      ASSERT_EQ(can, accepted) << "op " << op;
      if (accepted) {
        live[id] = {tokens, cached, cached / kTokensPerPage};
        preempted.erase(id);
        hit_tokens += cached;
      }
    } else {
      auto it = live.begin();
      std::advance(it, uniform(0, static_cast<int64_t>(live.size()) - 1));
      const int64_t id = it->first;
      Live& q = it->second;
      if (r < 70) {
        const bool decode = uniform(0, 3) > 0;
        const int64_t tokens = std::min<int64_t>(256, q.tokens + (decode ? 1 : uniform(1, 40)));
        accepted = m->Grow(id, tokens, decode ? GrowthPhase::kDecode : GrowthPhase::kPrefill);
        if (accepted) q.tokens = tokens;
      } else if (r < 85) {
        q.computed = std::min(q.tokens, q.computed + uniform(1, 64));
        m->OnTokensComputed(id, q.computed);
      } else if (r < 93) {
        m->ReleaseWritten(id, q.computed);  // preempted: resumes with what it holds
        preempted[id] = q.tokens;
        live.erase(it);
      } else {
        m->Release(id);
        live.erase(it);
      }
    }
    const KvUsage after = m->Usage();
    const KvStepCost cost = m->TakeStepCost();
    if (!accepted) {
      ++refused;
      ASSERT_EQ(Fields(after), Fields(before)) << "refused op " << op;
      ASSERT_EQ(Cost(cost), kNoCost) << "refused op " << op;
    }
    evicting += cost.unmap_calls > 0 ? 1 : 0;
    m->OnIterationStart();
    const KvStepCost upkeep = m->TakeStepCost();
    for (const KvStepCost& k : {cost, upkeep}) {
      ASSERT_EQ(k.map_calls % kCallsPerGroup, 0);
      ASSERT_EQ(k.unmap_calls % kCallsPerGroup, 0);
      if (backend == VmmBackend::kUvm) {
        ASSERT_EQ(k.unmap_calls, 0);
      }
      ASSERT_EQ((k.synchronous + k.background).count(),
                (k.map_calls * map_cost + k.unmap_calls * kUnmap).count());
    }
    int64_t tokens = 0, hits = 0, most = 0, needs = 0;
    for (const auto& [id, q] : live) {
      tokens += q.tokens;
      hits += q.hits;
      most = std::max(most, CeilDiv(q.tokens, kTokensPerPage));
      needs += CeilDiv(q.tokens, kTokensPerPage);
    }
    for (const KvUsage& u : {after, m->Usage()}) {
      ASSERT_EQ(u.capacity_bytes, groups * group_bytes);
      ASSERT_LE(u.live_bytes, u.allocated_bytes) << "op " << op;
      ASSERT_GE(u.cached_bytes, 0) << "op " << op;
      ASSERT_LE(u.allocated_bytes + u.cached_bytes, u.capacity_bytes) << "op " << op;
      // A shared page's tokens count once per extra reader, and each extra reader
      // found it cached.
      ASSERT_LE(u.live_bytes, tokens * token_bytes) << "op " << op;
      ASSERT_GE(u.live_bytes, (tokens - hits * kTokensPerPage) * token_bytes) << "op " << op;
      ASSERT_GE(u.allocated_bytes, most * group_bytes) << "op " << op;
      ASSERT_LE(u.allocated_bytes, needs * group_bytes) << "op " << op;
    }
  }
  EXPECT_GT(hit_tokens, 0);
  EXPECT_GT(refused, 0);
  if (backend == VmmBackend::kStock) {
    EXPECT_GT(evicting, 0);
  }
}

// Mode 0: overlap and deferred reclamation; 1: synchronous, deferred; 2: overlap,
// reclamation every iteration.
std::string RandomCaseName(const ::testing::TestParamInfo<std::tuple<VmmBackend, int>>& info) {
  const int mode = std::get<1>(info.param);
  return std::string(kVmmBackends.Name(std::get<0>(info.param))) + (mode == 0   ? "OverlapDeferred"
                                                                    : mode == 1 ? "SyncDeferred"
                                                                                : "OverlapEager");
}

INSTANTIATE_TEST_SUITE_P(BackendsAndModes, VAttentionPrefixCacheRandom,
                         ::testing::Combine(::testing::Values(VmmBackend::kStock, VmmBackend::kUvm),
                                            ::testing::Values(0, 1, 2)),
                         RandomCaseName);

}  // namespace
}  // namespace kvsim
