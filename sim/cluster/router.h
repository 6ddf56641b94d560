// Router: picks the replica that serves each arriving request.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "sim/core/enum_table.h"
#include "sim/workload/request.h"

namespace kvsim {

enum class RouterType { kRoundRobin, kLeastOutstanding };
// deployment.router.
inline constexpr auto kRouterTypes =
    MakeEnumTable<RouterType>({{"round_robin", RouterType::kRoundRobin},
                               {"least_outstanding", RouterType::kLeastOutstanding}});

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

}  // namespace kvsim
