// The acceptance rule of `kvsim fit`: whether a fit may be written as a calibration.
// A fit is accepted when both hold:
//   1. the solver met a tolerance (LeastSquaresResult::converged: it stopped where no
//      step lowers the cost, not at an iteration limit), and
//   2. the mean |relative error| over every fitted metric of every case after the fit
//      (fit.txt's "after: mean |error|") is at most solver.max_mean_error (0.1: 10%).
// Converging alone says nothing of the fit's quality: a bounded search also stops when
// its terms are pinned at their bounds far from the measurements (times written in
// milliseconds, a scenario that is not the measured run). The bundled fits end within 2%.
#pragma once

#include <string>
#include <vector>

#include "sim/config/fit_config.h"
#include "sim/fit/fitter.h"

namespace kvsim {

// The verdict on `fit` (its solve, params, fitted values and before/after metrics of
// its cases) under the rule above; `all` are the fitter's cases, `config` the fit
// file's (free terms' bounds, solver.max_mean_error). When refused, the reason gives
// the mean error against the bound, the terms that ended at a bound, and a hint: the
// measured times' ratio to the simulated ones before the fit when it is 100 or more
// (milliseconds?) or 1/100 or less, else what to check.
FitVerdict JudgeFit(const FitConfig& config, const std::vector<FitCase>& all,
                    const FitOutcome& fit);

}  // namespace kvsim
