// Routers: a conformance suite over every router, then each router's own rule.
#include "sim/cluster/router.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace kvsim {
namespace {

RequestSpec AnyRequest() {
  return {.id = 0, .arrival = Nanos(0), .prompt_tokens = 10, .output_tokens = 10, .hash_ids = {}};
}

RequestSpec OfStream(uint64_t stream) {
  RequestSpec r = AnyRequest();
  r.stream = stream;
  r.stream_tokens = 5;
  return r;
}

class RouterConformance : public testing::TestWithParam<RouterType> {};

TEST_P(RouterConformance, OneReplicaGetsEveryRequest) {
  auto router = NewRouter(GetParam());
  const std::vector<ReplicaLoad> loads = {{.running = 5, .waiting = 7}};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(router->Route(AnyRequest(), loads), 0u);
}

TEST_P(RouterConformance, ChoosesAnExistingReplicaWhateverTheLoads) {
  auto router = NewRouter(GetParam());
  for (size_t n = 1; n <= 6; ++n) {
    std::vector<ReplicaLoad> loads(n);
    for (size_t i = 0; i < n; ++i) {
      loads[i] = {.running = static_cast<int64_t>((i * 7) % 5),
                  .waiting = static_cast<int64_t>((i * 3) % 4)};
    }
    for (int k = 0; k < 10; ++k) EXPECT_LT(router->Route(AnyRequest(), loads), n);
  }
}

TEST_P(RouterConformance, EqualReplicasShareRequestsEvenly) {
  // With loads that stay equal, 8 replicas take 8 consecutive requests one each.
  auto router = NewRouter(GetParam());
  const std::vector<ReplicaLoad> loads(8, ReplicaLoad{.running = 2, .waiting = 1});
  std::set<size_t> chosen;
  for (int k = 0; k < 8; ++k) chosen.insert(router->Route(AnyRequest(), loads));
  EXPECT_EQ(chosen.size(), 8u);
}

INSTANTIATE_TEST_SUITE_P(AllRouters, RouterConformance,
                         testing::Values(RouterType::kRoundRobin, RouterType::kLeastOutstanding,
                                         RouterType::kPrefixAffinity),
                         [](const testing::TestParamInfo<RouterType>& param_info) {
                           return std::string(kRouterTypes.Name(param_info.param));
                         });

TEST(RoundRobinRouter, CyclesThroughReplicasInOrder) {
  auto router = NewRoundRobinRouter();
  const std::vector<ReplicaLoad> loads(3);
  std::vector<size_t> got;
  for (int k = 0; k < 7; ++k) got.push_back(router->Route(AnyRequest(), loads));
  EXPECT_EQ(got, (std::vector<size_t>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(RoundRobinRouter, IgnoresLoad) {
  auto router = NewRoundRobinRouter();
  // Replica 0 is swamped, replica 1 idle: round robin still alternates.
  const std::vector<ReplicaLoad> loads = {{.running = 100, .waiting = 50}, {}};
  EXPECT_EQ(router->Route(AnyRequest(), loads), 0u);
  EXPECT_EQ(router->Route(AnyRequest(), loads), 1u);
  EXPECT_EQ(router->Route(AnyRequest(), loads), 0u);
}

TEST(LeastOutstandingRouter, PicksTheFewestRunningPlusWaiting) {
  auto router = NewLeastOutstandingRouter();
  // Outstanding: 3+1 = 4, 0+2 = 2, 1+0 = 1, 0+5 = 5 -> replica 2.
  const std::vector<ReplicaLoad> loads = {{.running = 3, .waiting = 1},
                                          {.running = 0, .waiting = 2},
                                          {.running = 1, .waiting = 0},
                                          {.running = 0, .waiting = 5}};
  EXPECT_EQ(router->Route(AnyRequest(), loads), 2u);
}

TEST(LeastOutstandingRouter, CountsWaitingAsMuchAsRunning) {
  auto router = NewLeastOutstandingRouter();
  // Running alone would favour replica 0 (0 < 1); outstanding is 4 against 1.
  const std::vector<ReplicaLoad> loads = {{.running = 0, .waiting = 4},
                                          {.running = 1, .waiting = 0}};
  EXPECT_EQ(router->Route(AnyRequest(), loads), 1u);
}

TEST(LeastOutstandingRouter, EightIdleReplicasTakeEightRequestsOneEach) {
  // The loads do not change between the routes (as when requests arrive together
  // before anyone is enqueued): always choosing the first minimum would send all
  // eight to replica 0.
  auto router = NewLeastOutstandingRouter();
  const std::vector<ReplicaLoad> loads(8);
  std::vector<int> hits(8, 0);
  for (int k = 0; k < 8; ++k) ++hits[router->Route(AnyRequest(), loads)];
  for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(hits[i], 1) << "replica " << i;
}

TEST(LeastOutstandingRouter, SharesTiesOnlyAmongTheLeastLoaded) {
  auto router = NewLeastOutstandingRouter();
  // Replicas 1 and 3 tie at 1; the others carry more. Ties alternate between 1 and 3.
  const std::vector<ReplicaLoad> loads = {{.running = 2, .waiting = 0},
                                          {.running = 1, .waiting = 0},
                                          {.running = 4, .waiting = 0},
                                          {.running = 0, .waiting = 1}};
  std::vector<size_t> got;
  for (int k = 0; k < 4; ++k) got.push_back(router->Route(AnyRequest(), loads));
  EXPECT_EQ(got, (std::vector<size_t>{1, 3, 1, 3}));
}

TEST(LeastOutstandingRouter, FollowsTheLoadAsItChanges) {
  // Emulates the cluster: every routed request waits at its replica.
  auto router = NewLeastOutstandingRouter();
  std::vector<ReplicaLoad> loads = {{.running = 2, .waiting = 0}, {}, {.running = 1, .waiting = 0}};
  std::vector<size_t> got;
  for (int k = 0; k < 5; ++k) {
    const size_t r = router->Route(AnyRequest(), loads);
    got.push_back(r);
    ++loads[r].waiting;
  }
  // Outstanding (replicas 0, 1, 2) and choice, the cursor sitting after the last choice:
  //   2 0 1 -> 1 (the minimum)
  //   2 1 1 -> 2 (tie of 1 and 2; 2 is the first at or after the cursor)
  //   2 1 2 -> 1 (the minimum)
  //   2 2 2 -> 2 (three-way tie; the cursor is at 2)
  //   2 2 3 -> 0 (tie of 0 and 1; the cursor wrapped to 0)
  EXPECT_EQ(got, (std::vector<size_t>{1, 2, 1, 2, 0}));
}

TEST(PrefixAffinityRouter, SendsEveryRequestOfAStreamToOneReplicaWhileLoadsAreEven) {
  auto router = NewPrefixAffinityRouter();
  const std::vector<ReplicaLoad> idle(4);
  std::set<size_t> homes;
  for (uint64_t stream = 1; stream <= 40; ++stream) {
    const size_t home = router->Route(OfStream(stream), idle);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(router->Route(OfStream(stream), idle), home);
    homes.insert(home);
  }
  // Forty streams hash over all four replicas (rendezvous hashing spreads the keys).
  EXPECT_EQ(homes.size(), 4u);
}

TEST(PrefixAffinityRouter, ATraceWithoutStreamsKeysOnTheFirstPrefixBlock) {
  auto router = NewPrefixAffinityRouter();
  const std::vector<ReplicaLoad> idle(8);
  RequestSpec a = AnyRequest();
  a.hash_ids = {77, 1, 2};
  RequestSpec b = AnyRequest();
  b.hash_ids = {77, 9};
  EXPECT_EQ(router->Route(a, idle), router->Route(b, idle));
  // A first block hash of 0 (Mooncake numbers blocks from 0) is a key like any other:
  // the same replica however loads differ, not the least outstanding one.
  RequestSpec zero = AnyRequest();
  zero.hash_ids = {0};
  const size_t home = router->Route(zero, idle);
  std::vector<ReplicaLoad> uneven(8, ReplicaLoad{.running = 1, .waiting = 0});
  uneven[(home + 1) % 8].running = 0;
  EXPECT_EQ(router->Route(zero, uneven), home);
}

TEST(PrefixAffinityRouter, SpillsToTheNextRankedReplicaAtTheBoundedLoad) {
  auto router = NewPrefixAffinityRouter();
  std::vector<ReplicaLoad> loads(4);
  const size_t home = router->Route(OfStream(5), loads);
  // 8 outstanding in all, 7 of them at home: the bound is ceil(1.25 x 9 / 4) = 3, so
  // the home replica (7) is full and the stream goes elsewhere, to a replica under 3.
  loads[home].waiting = 7;
  loads[(home + 1) % 4].running = 1;
  const size_t spill = router->Route(OfStream(5), loads);
  EXPECT_NE(spill, home);
  EXPECT_LT(loads[spill].running + loads[spill].waiting, 3);
  // Idle again, the stream goes home.
  loads = std::vector<ReplicaLoad>(4);
  EXPECT_EQ(router->Route(OfStream(5), loads), home);
}

TEST(PrefixAffinityRouter, RequestsWithoutAPrefixGoToTheLeastOutstandingReplica) {
  auto router = NewPrefixAffinityRouter();
  const std::vector<ReplicaLoad> loads = {
      {.running = 3, .waiting = 0}, {.running = 0, .waiting = 1}, {.running = 2, .waiting = 2}};
  EXPECT_EQ(router->Route(AnyRequest(), loads), 1u);
}

}  // namespace
}  // namespace kvsim
