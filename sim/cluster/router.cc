// Round-robin, least-outstanding and prefix-affinity routers.
#include "sim/cluster/router.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

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

// SplitMix64's finaliser (Steele, Lea and Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014): a well-mixed 64-bit hash of x.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class PrefixAffinityRouter final : public Router {
 public:
  size_t Route(const RequestSpec& request, std::span<const ReplicaLoad> loads) override {
    KVSIM_CHECK(!loads.empty(), "no replicas");
    // Streams are numbered from 1 (0: none); a trace's block hashes may be 0, so they are
    // mixed apart from the stream numbers.
    if (request.stream == 0 && request.hash_ids.empty()) return fallback_.Route(request, loads);
    const uint64_t key =
        request.stream != 0 ? request.stream : Mix(request.hash_ids.front() ^ 0x5A5A5A5AULL);
    const size_t n = loads.size();
    int64_t total = 0;
    for (const ReplicaLoad& l : loads) total += l.running + l.waiting;
    const auto bound = static_cast<int64_t>(std::ceil(
        kPrefixAffinityLoadFactor * static_cast<double>(total + 1) / static_cast<double>(n)));
    // Replicas by rendezvous weight, highest first; the first within the bound takes it
    // (one always is: not every replica can hold more than the mean).
    std::vector<std::pair<uint64_t, size_t>> ranked;
    ranked.reserve(n);
    for (size_t i = 0; i < n; ++i) ranked.emplace_back(Mix(key ^ Mix(i + 1)), i);
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
    for (const auto& [weight, i] : ranked) {
      if (loads[i].running + loads[i].waiting < bound) return i;
    }
    return ranked.front().second;
  }

 private:
  LeastOutstandingRouter fallback_;
};

}  // namespace

std::unique_ptr<Router> NewRoundRobinRouter() { return std::make_unique<RoundRobinRouter>(); }
std::unique_ptr<Router> NewLeastOutstandingRouter() {
  return std::make_unique<LeastOutstandingRouter>();
}
std::unique_ptr<Router> NewPrefixAffinityRouter() {
  return std::make_unique<PrefixAffinityRouter>();
}
std::unique_ptr<Router> NewRouter(RouterType type) {
  switch (type) {
    case RouterType::kRoundRobin:
      return NewRoundRobinRouter();
    case RouterType::kLeastOutstanding:
      return NewLeastOutstandingRouter();
    case RouterType::kPrefixAffinity:
      return NewPrefixAffinityRouter();
  }
  KVSIM_CHECK(false, "unknown router type");
}

}  // namespace kvsim
