// The acceptance rule of kvsim fit (see fit_verdict.h).
#include "sim/fit/fit_verdict.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

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

// The parameter's name as Fitter::ParamName gives it.
std::string Name(const FitConfig& config, const FitParam& p) {
  const std::string& key = config.free[p.term].key;
  return p.gpu.empty() ? key : key + " @ " + p.gpu;
}

// The hint for terms the runs do not tell apart.
constexpr const char* kApartHint =
    "only a combination of them is fitted; fit runs at more than one load (request rate or "
    "max_num_seqs), or fix one of them";

// "A and B are not told apart" for each pair of parameters whose estimates correlate
// beyond kMaxTermCorrelation; adds the parameters named to `named`.
void PairCaveats(const FitConfig& config, const FitOutcome& fit, std::set<size_t>* named,
                 std::vector<std::string>* out) {
  const Eigen::MatrixXd& corr = fit.uncertainty.correlation;
  for (Eigen::Index a = 0; a < corr.rows(); ++a) {
    for (Eigen::Index b = a + 1; b < corr.cols(); ++b) {
      if (!(std::abs(corr(a, b)) > kMaxTermCorrelation)) continue;
      out->push_back(
          fmt::format("{} and {} are not told apart by these runs (correlation {:+.4f}): {}",
                      Name(config, fit.params[static_cast<size_t>(a)]),
                      Name(config, fit.params[static_cast<size_t>(b)]), corr(a, b), kApartHint));
      named->insert(static_cast<size_t>(a));
      named->insert(static_cast<size_t>(b));
    }
  }
}

// Without a pair named, the parameters of a near-singular combination (those with a
// weight of 0.3 or more in its eigenvector); adds them to `named`.
void GroupCaveat(const FitConfig& config, const FitOutcome& fit, std::set<size_t>* named,
                 std::vector<std::string>* out) {
  const SolutionUncertainty& u = fit.uncertainty;
  if (!named->empty() || !(u.eigen_ratio < kMinEigenRatio)) return;
  std::string names;
  for (Eigen::Index i = 0; i < u.weakest.size(); ++i) {
    if (std::abs(u.weakest[i]) < 0.3) continue;
    names += (names.empty() ? "" : ", ") + Name(config, fit.params[static_cast<size_t>(i)]);
    named->insert(static_cast<size_t>(i));
  }
  out->push_back(fmt::format(
      "{} are not told apart by these runs (J^T J with unit columns has eigenvalue ratio {:.2g}, "
      "below {:.2g}): {}",
      names, u.eigen_ratio, kMinEigenRatio, kApartHint));
}

}  // namespace

std::vector<std::string> FitCaveats(const FitConfig& config, const FitOutcome& fit) {
  std::vector<std::string> out;
  const SolutionUncertainty& u = fit.uncertainty;
  if (u.terms.size() != fit.params.size()) return out;  // not estimated
  std::set<size_t> named;
  const bool estimated = std::any_of(u.terms.begin(), u.terms.end(), [](const TermUncertainty& t) {
    return !t.at_bound && !t.no_effect && !t.not_finite;
  });
  if (estimated && u.degrees_of_freedom <= 0) {
    out.push_back(fmt::format(
        "as many free terms as fitted metrics (no degrees of freedom): any fit is exact, so the "
        "runs say nothing of how well the terms are determined; fit more metrics or runs"));
  }
  PairCaveats(config, fit, &named, &out);
  GroupCaveat(config, fit, &named, &out);
  for (size_t i = 0; i < fit.params.size(); ++i) {
    const TermUncertainty& t = u.terms[i];
    const FreeTerm& term = config.free[fit.params[i].term];
    const double x = fit.fitted[static_cast<Eigen::Index>(i)];
    const std::string name = Name(config, fit.params[i]);
    if (t.at_bound) {
      out.push_back(fmt::format(
          "{} ended at its {} bound {:g}: the bound, not the runs, sets it; widen the bound or "
          "fix the term",
          name, x <= term.min_value ? "lower" : "upper", x));
    } else if (t.not_finite) {
      out.push_back(fmt::format(
          "{} could not be judged: a fitted metric was not finite a step from {:.4g} (a run "
          "completed no request?); its uncertainty is unknown",
          name, x));
    } else if (t.no_effect) {
      out.push_back(fmt::format(
          "{} moves no fitted metric near {:.4g}: these runs do not determine it; fix it", name,
          x));
    } else if (!named.contains(i) && t.half_width_95 > kMaxRelativeHalfWidth * std::abs(x)) {
      out.push_back(fmt::format(
          "{} is poorly determined: {:.4g} +/- {:.2g} (95%), {:.0f}% of its value; fit more runs "
          "or metrics that it moves",
          name, x, t.half_width_95, 100 * t.half_width_95 / std::abs(x)));
    }
  }
  return out;
}

FitVerdict JudgeFit(const FitConfig& config, const std::vector<FitCase>& all,
                    const FitOutcome& fit) {
  std::vector<std::string> caveats = FitCaveats(config, fit);
  if (!fit.solve.converged) {
    return {false, fmt::format("the solver did not converge ({})", fit.solve.stop_reason),
            std::move(caveats)};
  }
  const double mean_error = RelativeErrors(all, fit.cases, fit.after).cwiseAbs().mean();
  const double bound = config.solver.max_mean_error;
  if (mean_error <= bound) return {true, "", std::move(caveats)};
  const std::string at_bounds = TermsAtBounds(config, fit);
  return {false,
          fmt::format("after the fit the mean |error| is {:.1f}%, above "
                      "solver.max_mean_error {:g}%{}; {}; to accept such a fit anyway, "
                      "raise solver.max_mean_error",
                      100 * mean_error, 100 * bound, at_bounds.empty() ? "" : "; " + at_bounds,
                      Hint(all, fit)),
          std::move(caveats)};
}

}  // namespace kvsim
