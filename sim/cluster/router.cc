// Round-robin and least-outstanding routers.
#include "sim/cluster/router.h"

#include "sim/core/check.h"

namespace kvsim {
namespace {

class RoundRobinRouter final : public Router {
 public:
  size_t Route(const RequestSpec&, std::span<const ReplicaLoad> loads) override {
    KVSIM_CHECK(!loads.empty(), "no replicas");
    const size_t choice = next_ % loads.size();
    next_ = choice + 1;
    return choice;
  }

 private:
  size_t next_ = 0;
};

class LeastOutstandingRouter final : public Router {
 public:
  size_t Route(const RequestSpec&, std::span<const ReplicaLoad> loads) override {
    KVSIM_CHECK(!loads.empty(), "no replicas");
    const size_t n = loads.size();
    size_t best = n;
    int64_t best_load = 0;
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (cursor_ + k) % n;
      const int64_t load = loads[i].running + loads[i].waiting;
      if (best == n || load < best_load) {
        best = i;
        best_load = load;
      }
    }
    cursor_ = best + 1;
    return best;
  }

 private:
  size_t cursor_ = 0;
};

}  // namespace

std::unique_ptr<Router> NewRoundRobinRouter() { return std::make_unique<RoundRobinRouter>(); }
std::unique_ptr<Router> NewLeastOutstandingRouter() {
  return std::make_unique<LeastOutstandingRouter>();
}

}  // namespace kvsim
