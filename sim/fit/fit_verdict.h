// The acceptance rule of `kvsim fit`: whether a fit may be written as a calibration.
// A fit is accepted when both hold:
//   1. the solver met a tolerance (LeastSquaresResult::converged: it stopped where no
//      step lowers the cost, not at an iteration limit), and
//   2. the mean |relative error| over every fitted metric of every case after the fit
//      (fit.txt's "after: mean |error|") is at most solver.max_mean_error (0.1: 10%).
// Converging alone says nothing of the fit's quality: a bounded search also stops when
// its terms are pinned at their bounds far from the measurements (times written in
// milliseconds, a scenario that is not the measured run). The bundled fits end within 2%.
// Nor does a small error say the terms are determined: at one load, a per-iteration
// and a per-sequence cost trade against each other along a valley of near-equal fits.
// Such a fit is accepted with caveats (FitCaveats) that fit.txt and fit.json print.
#pragma once

#include <string>
#include <vector>

#include "sim/config/fit_config.h"
#include "sim/fit/fitter.h"

namespace kvsim {

// The verdict on `fit` (its solve, params, fitted values and before/after metrics of
// its cases) under the rule above, with FitCaveats' caveats; `all` are the fitter's cases, `config`
// the fit file's (free terms' bounds, solver.max_mean_error). When refused, the reason gives the
// mean error against the bound, the terms that ended at a bound, and a hint: the measured times'
// ratio to the simulated ones before the fit when it is 100 or more (milliseconds?) or 1/100 or
// less, else what to check.
FitVerdict JudgeFit(const FitConfig& config, const std::vector<FitCase>& all,
                    const FitOutcome& fit);

// What the runs leave undetermined (fit.uncertainty, fit_uncertainty.h), one sentence
// each, naming the parameters as Fitter::ParamName does: two terms whose estimates
// correlate beyond kMaxTermCorrelation, or failing such a pair the terms of a
// near-singular combination (eigenvalue ratio below kMinEigenRatio), are "not told
// apart by these runs" with a hint (more than one load, or fix one); any other term
// whose 95% half-width exceeds kMaxRelativeHalfWidth of its value is "poorly
// determined"; a term at a bound is set by the bound; a term that moves no metric is
// not determined at all. Empty when every term is determined.
std::vector<std::string> FitCaveats(const FitConfig& config, const FitOutcome& fit);

}  // namespace kvsim
