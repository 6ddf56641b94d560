// Max sustainable load: bracket, then bisect, on the arrival rate. The search knows
// nothing of simulation: it calls a probe that says whether a rate meets the SLOs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sim/core/enum_table.h"

namespace kvsim {

// What a probe at one rate found.
struct ProbeOutcome {
  bool meets = false;
  std::string binding;  // when !meets: the SLO that failed (e.g. "ttft_s.p99")
  // When !meets: the failure does not depend on the load (requests refused for their
  // prompt), so no lower rate can pass and the search ends at this probe.
  bool at_any_load = false;
};

struct SearchConfig {
  double initial_qps = 1.0;  // first rate tried (> 0)
  double growth = 2.0;       // bracketing factor (> 1): rate x growth until a failure
  double min_qps = 1e-3;     // bracketing down stops here (> 0)
  double max_qps = 1e4;      // bracketing up stops here
  double tolerance = 0.02;   // stop when (fail - pass) <= tolerance x pass
  int max_probes = 60;       // hard cap on probes
};

enum class SearchStatus {
  kFound,            // last_pass_qps < first_fail_qps within tolerance
  kNoLoadMeets,      // even min_qps fails
  kMeetsAtAllTried,  // even max_qps meets
};
// The status column of plan.csv and plan.json.
inline constexpr auto kSearchStatuses =
    MakeEnumTable<SearchStatus>({{"found", SearchStatus::kFound},
                                 {"no_load_meets", SearchStatus::kNoLoadMeets},
                                 {"meets_at_all_tried", SearchStatus::kMeetsAtAllTried}});

struct SearchStep {
  double qps = 0;
  bool meets = false;
  std::string binding;
};

struct SearchResult {
  SearchStatus status = SearchStatus::kFound;
  double max_qps = 0;             // the highest rate that met the SLOs (0 if none)
  double first_fail_qps = 0;      // the lowest rate that failed (0 if none)
  std::string binding;            // the SLO that failed at first_fail_qps
  std::vector<SearchStep> steps;  // every probe in order
};

// Finds the highest rate that meets the SLOs, assuming the probe is monotone (meets
// below some rate, fails above). Brackets from initial_qps by `growth` up (or down)
// until the outcome flips, then bisects (geometric midpoint) until within tolerance.
// Checks at every step that the last passing rate is below the first failing one and
// throws InvariantError otherwise (a non-monotone probe). A failure at_any_load ends
// the search at once: kNoLoadMeets (InvariantError after a pass, which it contradicts).
// REQUIRES: a valid config (0 < min_qps <= initial_qps <= max_qps, growth > 1,
// tolerance > 0, max_probes >= 2).
SearchResult FindMaxRate(const SearchConfig& config,
                         const std::function<ProbeOutcome(double qps)>& probe);

}  // namespace kvsim
