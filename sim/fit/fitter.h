// Fitter: `kvsim fit`'s engine. It turns a fit file's measured runs into cases
// (a scenario whose workload a typed delta replaces with the measurement, plus the
// measured metrics), simulates them with the free timing terms set to trial values, and
// minimises the relative errors with SolveBoundedLeastSquares. Every simulation of
// a batch runs in parallel on `jobs` threads; the result does not depend on jobs.
#pragma once

#include <Eigen/Dense>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/calibration.h"
#include "sim/config/fit_config.h"
#include "sim/config/scenario_config.h"
#include "sim/config/scenario_delta.h"
#include "sim/config/yaml_tree.h"
#include "sim/fit/fit_uncertainty.h"
#include "sim/fit/least_squares.h"

namespace kvsim {

// One thing to simulate and match: a run measured per request, or one load stage
// of a run measured as aggregates.
struct FitCase {
  std::string run;    // the run's name
  std::string label;  // the run's name, or "run/stageN"
  // The scenario file with the run's (and the stage's) `set:` overrides: the fit
  // file's own keys, decoded once (ResolveCase).
  ConfigTree tree;
  // Per-request runs: the workload that replays the measurement, replacing the
  // scenario's whole workload (which is not read). nullopt for aggregates.
  std::optional<ScenarioDelta> replay;
  std::vector<std::pair<FitMetric, double>> targets;  // measured values, all > 0
  int64_t requests = 0;          // per-request runs: the measured request count; 0 otherwise
  std::string gpu;               // the scenario's GPU card name
  std::vector<double> resolved;  // the scenario's own value of each free term (NaN: unknown)
  // The tree decoded with the replay applied, once (ResolveCase); each trial sets the
  // free terms typed (TimingTermField) on a copy.
  std::shared_ptr<const ScenarioConfig> config;
};

// One fitted value: a free term, shared by every case (engine terms) or for the
// cases on one GPU card (FittableTerm::per_gpu).
struct FitParam {
  size_t term = 0;  // index into FitConfig::free
  std::string gpu;  // empty: shared
};

// A case simulated at one point: the metrics of its targets, in their order.
struct CaseMetrics {
  std::vector<double> simulated;
  std::string model, gpu;  // card names
  int64_t tensor_parallel = 1;
};

// Whether a fit may be written as a calibration (JudgeFit, fit_verdict.h).
struct FitVerdict {
  bool accepted = false;
  std::string reason;  // why it is refused; empty when accepted
  // What the runs leave undetermined, accepted or not: terms not told apart, terms
  // with a wide interval, terms at a bound (FitCaveats, fit_verdict.h). An accepted
  // fit with caveats matches the measurements, but its terms may not carry over.
  std::vector<std::string> caveats;
};

struct FitOutcome {
  std::vector<std::string> runs;  // fitted on these runs
  std::vector<FitParam> params;   // per-GPU terms once per GPU among the runs
  Eigen::VectorXd start, fitted;  // values, params order
  LeastSquaresResult solve;
  SolutionUncertainty uncertainty;         // of `fitted`, params order (EstimateUncertainty)
  std::vector<CaseMetrics> before, after;  // per case of these runs (start, fitted)
  std::vector<size_t> cases;               // indices into Fitter::cases()
  FitVerdict verdict;                      // JudgeFit's, on this outcome
  double wall_s = 0;
};

// One held-out run predicted by terms fitted on the other runs.
struct HoldoutOutcome {
  std::string run;
  FitOutcome fit;             // on the other runs
  std::vector<size_t> cases;  // the held-out run's cases
  std::vector<CaseMetrics> predicted;
};

class Fitter {
 public:
  // Loads every measurement, writes the replayed workloads as CSV traces into
  // `out_dir`/workloads/, builds the cases and checks each: the scenario decodes,
  // the workload matches the measurement (every request simulated, none rejected or
  // truncated), and each metric can be measured and simulated. Throws InputError
  // naming the fit file's run (file:line) or the measurement file's line.
  Fitter(FitConfig config, const std::string& out_dir, int jobs);

  const FitConfig& config() const { return config_; }
  const std::vector<FitCase>& cases() const { return cases_; }
  // "timing.engine.per_seq_s", or "timing.roofline.gemm_efficiency @ RTX-4090".
  std::string ParamName(const FitParam& p) const;

  // Fits the free terms on the runs named (all when empty) and judges the fit
  // (FitOutcome::verdict). Errors of the simulations propagate.
  FitOutcome Fit(const std::vector<std::string>& runs) const;
  // Leave-one-run-out: for each run, fits on the others and predicts it. Requires
  // at least two runs.
  std::vector<HoldoutOutcome> Holdout() const;

  // Simulates the cases with `params` at `x`, all in parallel. A per-GPU parameter
  // applies to the cases on its GPU only; the others keep their scenario's value.
  std::vector<CaseMetrics> Simulate(const std::vector<size_t>& cases,
                                    const std::vector<FitParam>& params,
                                    const Eigen::VectorXd& x) const;

  // The calibration a fit gives (terms, what they were fitted on, residuals; the
  // holdout's errors when given).
  Calibration ToCalibration(const FitOutcome& fit,
                            const std::vector<HoldoutOutcome>* holdout) const;

 private:
  std::vector<std::vector<CaseMetrics>> SimulateBatch(
      const std::vector<size_t>& cases, const std::vector<FitParam>& params,
      const std::vector<Eigen::VectorXd>& points) const;
  std::vector<size_t> CasesOf(const std::vector<std::string>& runs) const;

  FitConfig config_;
  std::vector<FitCase> cases_;
  int jobs_;  // threads per batch of simulations; <= 0: one per core
  // What every case ran under (timing type, engine preset and kernels: checked to be
  // one) and the hosts their GPUs were placed on: a Calibration's fitted_on fields.
  Calibration ran_on_;
};

// Relative error (simulated - measured) / measured of each target of each case.
Eigen::VectorXd RelativeErrors(const std::vector<FitCase>& all, const std::vector<size_t>& cases,
                               const std::vector<CaseMetrics>& metrics);

}  // namespace kvsim
