// Router: picks the replica that serves each arriving request.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "sim/core/enum_table.h"
#include "sim/workload/request.h"

namespace kvsim {

enum class RouterType { kRoundRobin, kLeastOutstanding, kPrefixAffinity };
// deployment.router.
inline constexpr auto kRouterTypes =
    MakeEnumTable<RouterType>({{"round_robin", RouterType::kRoundRobin},
                               {"least_outstanding", RouterType::kLeastOutstanding},
                               {"prefix_affinity", RouterType::kPrefixAffinity}});

// A replica's load as the router sees it at the arrival instant.
struct ReplicaLoad {
  int64_t running = 0;  // admitted sequences
  int64_t waiting = 0;  // queued sequences
};

class Router {
 public:
  virtual ~Router() = default;
  // Returns the index of the replica for `request`.
  // REQUIRES: loads.size() >= 1. ENSURES: result < loads.size().
  virtual size_t Route(const RequestSpec& request, std::span<const ReplicaLoad> loads) = 0;
};

// Cycles through replicas 0, 1, ..., n-1, 0, ...
std::unique_ptr<Router> NewRoundRobinRouter();

// The replica with the fewest outstanding (running + waiting) requests; ties go to
// the first tied replica at or after a cursor that advances past each choice, so
// equal loads are shared in turn instead of always favouring replica 0.
std::unique_ptr<Router> NewLeastOutstandingRouter();

// Requests that share a prefix go to the same replica, so that its prefix cache holds
// it (session- and prefix-aware routing, as serving routers such as SGLang's and
// llm-d's do). A request's key is its content stream (a shared system prompt or a
// multi-turn session, RequestSpec::stream), else its trace's first prefix-block hash;
// its replicas are ranked by rendezvous hashing of the key (Thaler and Ravishankar,
// "Using name-based mappings to increase hit rates", IEEE/ACM ToN 1998), and it takes
// the first whose outstanding requests stay within the bounded load
// ceil(kPrefixAffinityLoadFactor x (all outstanding + 1) / replicas) (Mirrokni, Thorup
// and Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018), so a hot
// prefix spills over instead of queueing on one replica. Requests without a key go
// to the least outstanding replica, as NewLeastOutstandingRouter's do.
std::unique_ptr<Router> NewPrefixAffinityRouter();
// The router of `type` (deployment.router).
std::unique_ptr<Router> NewRouter(RouterType type);

// The bounded load's factor (1 + epsilon): 1.25, the value the bounded-loads paper's
// deployment at Vimeo used (section 1, "c = 1.25").
inline constexpr double kPrefixAffinityLoadFactor = 1.25;

}  // namespace kvsim
