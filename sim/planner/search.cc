// Max sustainable load search: geometric bracketing from initial_qps, then geometric
// bisection of the bracket, with a monotonicity check after every probe.
#include "sim/planner/search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "sim/core/check.h"

namespace kvsim {
namespace {

void CheckConfig(const SearchConfig& c) {
  KVSIM_CHECK(std::isfinite(c.min_qps) && c.min_qps > 0,
              fmt::format("search: min_qps must be finite and > 0, got {}", c.min_qps));
  KVSIM_CHECK(std::isfinite(c.max_qps),
              fmt::format("search: max_qps must be finite, got {}", c.max_qps));
  KVSIM_CHECK(c.min_qps <= c.initial_qps && c.initial_qps <= c.max_qps,
              fmt::format("search: need min_qps <= initial_qps <= max_qps, got {} <= {} <= {}",
                          c.min_qps, c.initial_qps, c.max_qps));
  KVSIM_CHECK(std::isfinite(c.growth) && c.growth > 1,
              fmt::format("search: growth must be finite and > 1, got {}", c.growth));
  KVSIM_CHECK(std::isfinite(c.tolerance) && c.tolerance > 0,
              fmt::format("search: tolerance must be finite and > 0, got {}", c.tolerance));
  KVSIM_CHECK(c.max_probes >= 2,
              fmt::format("search: max_probes must be >= 2, got {}", c.max_probes));
}

// Runs probes and keeps the bracket: the highest passing rate and the lowest failing
// rate seen so far. Every probe is appended to result.steps.
class Bracket {
 public:
  Bracket(const std::function<ProbeOutcome(double)>& probe, SearchResult& result)
      : probe_(probe), result_(result) {}

  // Probes `qps` and returns whether it met the SLOs. Throws InvariantError when the
  // outcome contradicts an earlier one (a pass at or above a known failure, or a
  // failure at or below a known pass).
  bool Probe(double qps) {
    ProbeOutcome outcome = probe_(qps);
    result_.steps.push_back(SearchStep{qps, outcome.meets, outcome.binding});
    if (outcome.meets) {
      KVSIM_CHECK(!has_fail_ || qps < fail_,
                  fmt::format("search: non-monotone probe: meets at {} qps but failed at {} qps",
                              qps, fail_));
      if (!has_pass_ || qps > pass_) pass_ = qps;
      has_pass_ = true;
    } else {
      KVSIM_CHECK(
          !has_pass_ || qps > pass_,
          fmt::format("search: non-monotone probe: fails at {} qps but met at {} qps", qps, pass_));
      if (!has_fail_ || qps < fail_) {
        fail_ = qps;
        fail_binding_ = outcome.binding;
      }
      has_fail_ = true;
      KVSIM_CHECK(!outcome.at_any_load || !has_pass_,
                  fmt::format("search: fails at {} qps at any load but met at {} qps", qps, pass_));
      fails_at_any_load_ = fails_at_any_load_ || outcome.at_any_load;
    }
    KVSIM_CHECK(
        !has_pass_ || !has_fail_ || pass_ < fail_,
        fmt::format("search: last pass {} qps is not below first failure {} qps", pass_, fail_));
    return outcome.meets;
  }

  int probes() const { return static_cast<int>(result_.steps.size()); }
  bool fails_at_any_load() const { return fails_at_any_load_; }
  double pass() const { return pass_; }
  double fail() const { return fail_; }

  // Writes max_qps, first_fail_qps and binding from the bracket (0 / empty where absent).
  void Finish(SearchStatus status) const {
    result_.status = status;
    result_.max_qps = has_pass_ ? pass_ : 0;
    result_.first_fail_qps = has_fail_ ? fail_ : 0;
    result_.binding = has_fail_ ? fail_binding_ : std::string();
  }

 private:
  const std::function<ProbeOutcome(double)>& probe_;
  SearchResult& result_;
  bool has_pass_ = false;
  bool has_fail_ = false;
  double pass_ = 0;
  double fail_ = 0;
  std::string fail_binding_;
  bool fails_at_any_load_ = false;
};

}  // namespace

// Contract beyond the header: max_probes caps bracketing too. If it runs out before the
// outcome flips, the status is kMeetsAtAllTried (max_qps = highest rate tried) or
// kNoLoadMeets (first_fail_qps = lowest rate tried). If it runs out while bisecting, the
// status is kFound with a bracket that may be wider than the tolerance. Bisection also stops
// when the bracket can no longer be split in double precision.
SearchResult FindMaxRate(const SearchConfig& config,
                         const std::function<ProbeOutcome(double qps)>& probe) {
  CheckConfig(config);
  KVSIM_CHECK(static_cast<bool>(probe), "search: probe function is empty");

  SearchResult result;
  Bracket bracket(probe, result);

  double qps = config.initial_qps;
  if (bracket.Probe(qps)) {
    // Bracket upward until a failure; max_qps itself is the last rate tried.
    for (;;) {
      if (qps >= config.max_qps || bracket.probes() >= config.max_probes) {
        bracket.Finish(SearchStatus::kMeetsAtAllTried);
        return result;
      }
      qps = std::min(qps * config.growth, config.max_qps);
      if (!bracket.Probe(qps)) break;
    }
  } else {
    // Bracket downward until a pass; min_qps itself is the last rate tried.
    for (;;) {
      if (qps <= config.min_qps || bracket.probes() >= config.max_probes ||
          bracket.fails_at_any_load()) {
        bracket.Finish(SearchStatus::kNoLoadMeets);
        return result;
      }
      qps = std::max(qps / config.growth, config.min_qps);
      if (bracket.Probe(qps)) break;
    }
  }

  // Bisect at the geometric midpoint: each probe halves log(fail / pass).
  while (bracket.fail() - bracket.pass() > config.tolerance * bracket.pass() &&
         bracket.probes() < config.max_probes) {
    const double mid = std::sqrt(bracket.pass() * bracket.fail());
    if (!(mid > bracket.pass() && mid < bracket.fail())) break;  // adjacent doubles
    bracket.Probe(mid);
  }
  bracket.Finish(SearchStatus::kFound);
  return result;
}

}  // namespace kvsim
