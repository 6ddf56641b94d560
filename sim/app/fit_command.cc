// kvsim fit (see commands.h): the table, calibration.yaml and fit.json.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>

#include "sim/app/commands.h"
#include "sim/config/calibration.h"
#include "sim/config/fit_config.h"
#include "sim/core/check.h"
#include "sim/core/staged_directory.h"
#include "sim/fit/fitter.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/outputs.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

std::string Pct(double relative) { return fmt::format("{:+.1f}%", 100.0 * relative); }

// Seconds with enough digits for TPOT-sized and TTFT-sized values alike.
std::string Sec(double s) { return fmt::format("{:.4g}", s); }

// The per-case table: measured, then each labelled column's value and error.
std::string MetricsTable(
    const std::vector<FitCase>& all, const std::vector<size_t>& cases,
    const std::vector<std::pair<std::string, const std::vector<CaseMetrics>*>>& columns) {
  std::string out = fmt::format("{:<22} {:<12} {:>10}", "run", "metric", "measured");
  for (const auto& [name, values] : columns) out += fmt::format(" {:>10} {:>8}", name, "error");
  out += "\n";
  for (size_t i = 0; i < cases.size(); ++i) {
    const FitCase& c = all[cases[i]];
    for (size_t t = 0; t < c.targets.size(); ++t) {
      const double measured = c.targets[t].second;
      out += fmt::format("{:<22} {:<12} {:>10}", c.label, c.targets[t].first.Name(), Sec(measured));
      for (const auto& [name, values] : columns) {
        const double v = (*values)[i].simulated[t];
        out += fmt::format(" {:>10} {:>8}", Sec(v), Pct((v - measured) / measured));
      }
      out += "\n";
    }
  }
  return out;
}

// "mean |error| X%, worst Y% (case metric)" over the cases' targets.
std::string ErrorSummary(const std::vector<FitCase>& all, const std::vector<size_t>& cases,
                         const std::vector<CaseMetrics>& metrics) {
  const Eigen::VectorXd r = RelativeErrors(all, cases, metrics);
  Eigen::Index worst = 0;
  r.cwiseAbs().maxCoeff(&worst);
  std::string where;
  Eigen::Index k = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    for (const auto& target : all[cases[i]].targets) {
      if (k++ == worst) where = fmt::format("{} {}", all[cases[i]].label, target.first.Name());
    }
  }
  return fmt::format("mean |error| {:.1f}%, worst {} ({})", 100.0 * r.cwiseAbs().mean(),
                     Pct(r[worst]), where);
}

void WriteMetrics(JsonWriter& j, const std::vector<FitCase>& all, const std::vector<size_t>& cases,
                  const std::vector<CaseMetrics>& metrics, std::string_view key) {
  j.BeginObject(key);
  for (size_t i = 0; i < cases.size(); ++i) {
    const FitCase& c = all[cases[i]];
    j.BeginObject(c.label);
    for (size_t t = 0; t < c.targets.size(); ++t) {
      j.BeginObject(c.targets[t].first.Name());
      j.Field("measured", c.targets[t].second);
      j.Field("simulated", metrics[i].simulated[t]);
      j.Field("relative_error",
              (metrics[i].simulated[t] - c.targets[t].second) / c.targets[t].second);
      j.EndObject();
    }
    j.EndObject();
  }
  j.EndObject();
}

void WriteOutcome(JsonWriter& j, const Fitter& fitter, const FitOutcome& f) {
  const FitConfig& config = fitter.config();
  j.BeginArray("runs");
  for (const std::string& r : f.runs) j.Field("", r);
  j.EndArray();
  j.BeginArray("terms");
  for (size_t i = 0; i < f.params.size(); ++i) {
    const FreeTerm& t = config.free[f.params[i].term];
    j.BeginObject();
    j.Field("key", t.key);
    j.Field("gpu", f.params[i].gpu);  // empty: shared by every GPU
    j.Field("start", f.start[static_cast<Eigen::Index>(i)]);
    j.Field("fitted", f.fitted[static_cast<Eigen::Index>(i)]);
    j.Field("min", t.min_value);
    j.Field("max", t.max_value);
    if (i < f.uncertainty.terms.size()) {  // null where not estimated (fit_uncertainty.h)
      const TermUncertainty& u = f.uncertainty.terms[i];
      j.Field("standard_error", u.standard_error);
      j.Field("half_width_95", u.half_width_95);
      j.Field("at_bound", u.at_bound);
    }
    j.EndObject();
  }
  j.EndArray();
  // Correlation of the terms' estimates, rows and columns in the terms' order.
  j.BeginArray("correlation");
  for (Eigen::Index a = 0; a < f.uncertainty.correlation.rows(); ++a) {
    j.BeginArray();
    for (Eigen::Index b = 0; b < f.uncertainty.correlation.cols(); ++b) {
      j.Field("", f.uncertainty.correlation(a, b));
    }
    j.EndArray();
  }
  j.EndArray();
  j.BeginObject("solver");
  j.Field("converged", f.solve.converged);
  j.Field("accepted", f.verdict.accepted);  // written as a calibration (JudgeFit)
  j.Field("refused_because", f.verdict.reason);
  // Every term determined by the runs: no caveat (FitCaveats, fit_verdict.h).
  j.Field("determined", f.verdict.caveats.empty());
  j.BeginArray("caveats");
  for (const std::string& c : f.verdict.caveats) j.Field("", c);
  j.EndArray();
  j.Field("stop_reason", f.solve.stop_reason);
  j.Field("iterations", static_cast<int64_t>(f.solve.iterations));
  j.Field("evaluations", static_cast<int64_t>(f.solve.evaluations));
  j.Field("initial_cost", f.solve.initial_cost);
  j.Field("cost", f.solve.cost);
  j.Field("wall_s", f.wall_s);
  j.EndObject();
  WriteMetrics(j, fitter.cases(), f.cases, f.before, "before");
  WriteMetrics(j, fitter.cases(), f.cases, f.after, "after");
}

// The head of fit.txt: what was fitted to what, how the solver went and why it stopped.
std::string FitSummary(const FitConfig& config, const FitOutcome& fit) {
  const size_t sims =
      static_cast<size_t>(fit.solve.evaluations + fit.uncertainty.evaluations) * fit.cases.size();
  std::string text = fmt::format(
      "fit: {} ({}): {} parameters ({} free terms) on {} runs ({} cases); {} simulations in "
      "{:.2f} s\n",
      config.name, config.file, fit.params.size(), config.free.size(), fit.runs.size(),
      fit.cases.size(), sims, fit.wall_s);
  text += fmt::format(
      "solver: {}; {} iterations; cost {:.3g} -> {:.3g}{}\n",
      config.solver.method == "pattern" ? "compass search" : "Levenberg-Marquardt + compass search",
      fit.solve.iterations, fit.solve.initial_cost, fit.solve.cost,
      fit.solve.converged ? "" : " (NOT converged)");
  text += fmt::format("stopped: {}\n", fit.solve.stop_reason);
  const std::string within = fmt::format("mean |error| within solver.max_mean_error {:g}%",
                                         100 * config.solver.max_mean_error);
  if (!fit.verdict.accepted) {
    text += fmt::format("REFUSED: {}\n", fit.verdict.reason);
  } else if (fit.verdict.caveats.empty()) {
    text += fmt::format("accepted: {}; every term determined\n", within);
  } else {
    text += fmt::format(
        "accepted WITH CAVEATS: {}, but these runs do not determine every term "
        "(the terms may not carry over to other loads):\n",
        within);
  }
  if (!fit.verdict.accepted && !fit.verdict.caveats.empty()) text += "caveats:\n";
  for (const std::string& c : fit.verdict.caveats) text += "  - " + c + "\n";
  return text + "\n";
}

// "correlation: A ~ B -0.993" per pair of parameters both estimated; "" with fewer.
std::string Correlations(const Fitter& fitter, const FitOutcome& fit) {
  const Eigen::MatrixXd& corr = fit.uncertainty.correlation;
  std::string text;
  for (Eigen::Index a = 0; a < corr.rows(); ++a) {
    for (Eigen::Index b = a + 1; b < corr.cols(); ++b) {
      if (std::isnan(corr(a, b))) continue;
      text += fmt::format("correlation: {} ~ {} {:+.4f}\n",
                          fitter.ParamName(fit.params[static_cast<size_t>(a)]),
                          fitter.ParamName(fit.params[static_cast<size_t>(b)]), corr(a, b));
    }
  }
  return text;
}

// The fitted parameters: start, fitted value, 95% half-width and bounds (in the term's units) of
// each.
std::string TermsTable(const FitConfig& config, const Fitter& fitter, const FitOutcome& fit) {
  size_t name_width = 46;  // the widest parameter name, so long card names keep the columns
  for (const FitParam& p : fit.params)
    name_width = std::max(name_width, fitter.ParamName(p).size());
  std::string text = fmt::format("{:<{}} {:>12} {:>12} {:>12}   {}\n", "term", name_width, "start",
                                 "fitted", "+/- (95%)", "bounds");
  for (size_t i = 0; i < fit.params.size(); ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    const FreeTerm& t = config.free[fit.params[i].term];
    const bool at_bound = fit.fitted[k] <= t.min_value || fit.fitted[k] >= t.max_value;
    const double half_width =
        i < fit.uncertainty.terms.size() ? fit.uncertainty.terms[i].half_width_95 : std::nan("");
    text += fmt::format("{:<{}} {:>12.4g} {:>12.4g} {:>12}   [{:g}, {:g}]{}\n",
                        fitter.ParamName(fit.params[i]), name_width, fit.start[k], fit.fitted[k],
                        std::isnan(half_width) ? "-" : fmt::format("{:.2g}", half_width),
                        t.min_value, t.max_value, at_bound ? " (at a bound)" : "");
  }
  return text + Correlations(fitter, fit);
}

// The per-case metrics before and after the fit, then their error summaries.
std::string BeforeAfter(const Fitter& fitter, const FitOutcome& fit) {
  std::string text =
      MetricsTable(fitter.cases(), fit.cases, {{"before", &fit.before}, {"after", &fit.after}});
  text +=
      fmt::format("before: {}\nafter:  {}\n", ErrorSummary(fitter.cases(), fit.cases, fit.before),
                  ErrorSummary(fitter.cases(), fit.cases, fit.after));
  return text;
}

// The leave-one-run-out section of fit.txt: each run's fit on the others and the
// predicted metrics; "" without holdout runs.
std::string HoldoutText(const Fitter& fitter, const std::vector<HoldoutOutcome>& holdout) {
  if (holdout.empty()) return "";
  std::string text =
      "\nholdout (leave one run out: each run predicted by terms fitted on the others)\n";
  std::vector<size_t> cases;
  std::vector<CaseMetrics> predicted;
  for (const HoldoutOutcome& h : holdout) {
    text += fmt::format("{}: fitted on {} -> ", h.run, fmt::join(h.fit.runs, ", "));
    for (size_t i = 0; i < h.fit.params.size(); ++i) {
      const std::string name = fitter.ParamName(h.fit.params[i]);
      text += fmt::format("{}{}={:.4g}", i ? ", " : "", name.substr(name.find('.', 7) + 1),
                          h.fit.fitted[static_cast<Eigen::Index>(i)]);
    }
    text += !h.fit.solve.converged           ? " (NOT converged)"
            : !h.fit.verdict.accepted        ? " (refused: above solver.max_mean_error)"
            : !h.fit.verdict.caveats.empty() ? " (accepted with caveats)"
                                             : "";
    text += fmt::format("; on its own runs: {}\n",
                        ErrorSummary(fitter.cases(), h.fit.cases, h.fit.after));
    cases.insert(cases.end(), h.cases.begin(), h.cases.end());
    predicted.insert(predicted.end(), h.predicted.begin(), h.predicted.end());
  }
  text += MetricsTable(fitter.cases(), cases, {{"predicted", &predicted}});
  text += fmt::format("holdout: {}\n", ErrorSummary(fitter.cases(), cases, predicted));
  return text;
}

// fit.json: the fit file, the outcome and, per held-out run, its fit and predictions.
std::string FitJson(const FitConfig& config, const Fitter& fitter, const FitOutcome& fit,
                    const std::vector<HoldoutOutcome>& holdout) {
  JsonWriter j;
  j.BeginObject();
  j.Field("fit", config.name);
  j.Field("fit_file", config.file);
  WriteOutcome(j, fitter, fit);
  if (!holdout.empty()) {
    j.BeginArray("holdout");
    for (const HoldoutOutcome& h : holdout) {
      j.BeginObject();
      j.Field("held_out", h.run);
      WriteOutcome(j, fitter, h.fit);
      WriteMetrics(j, fitter.cases(), h.cases, h.predicted, "predicted");
      j.EndObject();
    }
    j.EndArray();
  }
  j.EndObject();
  return j.str() + "\n";
}

// Prints fit.txt and where the outputs in `dir` went (the calibration when `accepted`).
void PrintOutputs(std::ostream& out, const std::string& text, bool accepted,
                  const std::string& dir) {
  out << text;
  if (accepted) {
    const std::string cal_path = (fs::path(dir) / "calibration.yaml").string();
    out << fmt::format("\ncalibration written to {}; use it with timing.calibration: {}\n",
                       cal_path, fs::absolute(cal_path).string());
  }
  out << fmt::format("outputs written to {}/\n", dir);
}

}  // namespace

int FitCommand(const CommandOptions& o, std::ostream& out) {
  ConfigTree tree = ConfigTree::Load(o.config_path);
  for (const std::string& assignment : o.overrides) tree.Set(assignment);
  const FitConfig config = DecodeFitConfig(tree);
  const std::string dir = !o.out_dir.empty()
                              ? o.out_dir
                              : (fs::path("reports") / "runs" / (config.name + "-fit")).string();
  StagedDirectory staged(dir, o.force);
  Manifest top(staged.path());
  const Fitter fitter(config, staged.path().string(), o.jobs);
  const FitOutcome fit = fitter.Fit({});
  std::vector<HoldoutOutcome> holdout;
  if (o.holdout) holdout = fitter.Holdout();

  const std::string text = FitSummary(config, fit) + TermsTable(config, fitter, fit) + '\n' +
                           BeforeAfter(fitter, fit) + HoldoutText(fitter, holdout);
  top.Write("fit.json", FitJson(config, fitter, fit, holdout));
  top.Write("fit.txt", text);
  if (fit.verdict.accepted) {
    const Calibration cal = fitter.ToCalibration(fit, holdout.empty() ? nullptr : &holdout);
    top.Write("calibration.yaml", CalibrationYaml(cal));
  }
  top.Close();
  staged.Commit();
  if (!o.quiet) PrintOutputs(out, text, fit.verdict.accepted, dir);
  if (fit.solve.no_effect) {
    throw InputError(
        fmt::format("{}: the free terms do not change any fitted metric on these runs (a term "
                    "another timing model or engine reads?); no calibration.yaml written",
                    config.file));
  }
  if (!fit.solve.converged) {
    throw InputError(
        fmt::format("{}: the fit did not converge ({}); no calibration.yaml written. Raise "
                    "solver.max_iterations, narrow the free terms' bounds or free fewer terms",
                    config.file, fit.solve.stop_reason));
  }
  if (!fit.verdict.accepted) {
    throw InputError(fmt::format("{}: the fit is refused: {}; no calibration.yaml written",
                                 config.file, fit.verdict.reason));
  }
  return 0;
}

}  // namespace kvsim
