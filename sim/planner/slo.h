// Service-level objectives and their evaluation on a finished simulation.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/config/plan_config.h"  // SloSpec
#include "sim/metrics/metrics.h"

namespace kvsim {

struct SloCheck {
  std::string name;  // e.g. "ttft_s.p99", "attainment", "stability"
  double value = 0;  // measured
  double limit = 0;  // threshold
  bool met = false;
  // How far inside (> 0) or outside (< 0) the limit, relative to it.
  double margin = 0;
};

struct SloVerdict {
  bool meets = false;
  std::vector<SloCheck> checks;  // every objective that applies, in a fixed order
  // "admitted" when requests were refused beyond slo.admitted (no load passes then);
  // else the failed check with the worst margin; else the tightest met one.
  std::string binding;
};

// Every objective of `slo` in words, one per line, defaults included: "ttft_s p99
// <= 2 s", "stability: ... (default)". What a plan's output lists as applied.
std::vector<std::string> DescribeSlo(const SloSpec& slo);

// Checks `summary` (percentiles) and the per-request records against `slo`.
// With no completed request every objective fails.
SloVerdict EvaluateSlo(const SloSpec& slo, const Summary& summary,
                       const std::vector<RequestRecord>& records);

}  // namespace kvsim
