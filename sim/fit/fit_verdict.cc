// The acceptance rule of kvsim fit (see fit_verdict.h).
#include "sim/fit/fit_verdict.h"

#include <fmt/format.h>

#include <cmath>

namespace kvsim {
namespace {

// "timing.engine.per_seq_s ended at its upper bound 0.001, ..." for the fitted
// parameters at a bound of their free term; "" when none is.
std::string TermsAtBounds(const FitConfig& config, const FitOutcome& fit) {
  std::string out;
  for (size_t i = 0; i < fit.params.size(); ++i) {
    const FreeTerm& t = config.free[fit.params[i].term];
    const double x = fit.fitted[static_cast<Eigen::Index>(i)];
    if (x > t.min_value && x < t.max_value) continue;
    const std::string name = fit.params[i].gpu.empty() ? t.key : t.key + " @ " + fit.params[i].gpu;
    out += fmt::format("{}{} ended at its {} bound {:g}", out.empty() ? "" : ", ", name,
                       x <= t.min_value ? "lower" : "upper",
                       x <= t.min_value ? t.min_value : t.max_value);
  }
  return out;
}

// The geometric mean of measured / simulated over the targets of the fit's cases at
// its start (NaN when no simulated value is positive).
double MeasuredOverSimulated(const std::vector<FitCase>& all, const FitOutcome& fit) {
  double log_sum = 0;
  int n = 0;
  for (size_t i = 0; i < fit.cases.size(); ++i) {
    const FitCase& c = all[fit.cases[i]];
    for (size_t t = 0; t < c.targets.size(); ++t) {
      const double simulated = fit.before[i].simulated[t];
      if (!(simulated > 0)) continue;
      log_sum += std::log(c.targets[t].second / simulated);
      ++n;
    }
  }
  return n == 0 ? std::nan("") : std::exp(log_sum / n);
}

// What to check when the fit is far off: the units when the measured times are 100
// times the simulated ones or more (or 1/100 or less) before the fit, else the scenario.
std::string Hint(const std::vector<FitCase>& all, const FitOutcome& fit) {
  const double ratio = MeasuredOverSimulated(all, fit);
  if (ratio >= 100) {
    return fmt::format(
        "before the fit the measured times were about {:.0f} times the simulated ones: times "
        "look like milliseconds (or microseconds), and kvsim fit reads seconds",
        ratio);
  }
  if (ratio <= 0.01) {
    return fmt::format(
        "before the fit the measured times were about 1/{:.0f} of the simulated ones: check "
        "that they are in seconds and that the scenario is the measured run's",
        1 / ratio);
  }
  return "check that the scenario is the measured run's (model, GPU, tensor parallelism, "
         "scheduler limits, KV capacity) and that the measured times are in seconds";
}

}  // namespace

FitVerdict JudgeFit(const FitConfig& config, const std::vector<FitCase>& all,
                    const FitOutcome& fit) {
  if (!fit.solve.converged) {
    return {false, fmt::format("the solver did not converge ({})", fit.solve.stop_reason)};
  }
  const double mean_error = RelativeErrors(all, fit.cases, fit.after).cwiseAbs().mean();
  const double bound = config.solver.max_mean_error;
  if (mean_error <= bound) return {true, ""};
  const std::string at_bounds = TermsAtBounds(config, fit);
  return {false, fmt::format("after the fit the mean |error| is {:.1f}%, above "
                             "solver.max_mean_error {:g}%{}; {}; to accept such a fit anyway, "
                             "raise solver.max_mean_error",
                             100 * mean_error, 100 * bound,
                             at_bounds.empty() ? "" : "; " + at_bounds, Hint(all, fit))};
}

}  // namespace kvsim
