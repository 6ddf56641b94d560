// The kvsim subcommands, separated from argument parsing so tests can call them.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace kvsim {

struct CommandOptions {
  std::vector<double> rates_qps;  // sweep: offered loads
  std::string config_path;
  std::vector<std::string> overrides;  // "key.path=value", applied in order
  std::string out_dir;                 // empty: reports/runs/<config name>[-compare]
  int jobs = 0;                        // compare: parallel runs; 0 = all cores
  bool quiet = false;                  // no summary on stdout
  bool force = false;                  // replace an earlier run's outputs in out_dir
  std::string gpu;                     // validate: a GPU card name or path; empty: by gpu_name
  std::string models_dir;              // validate: where named cards are; empty: models/
  bool holdout = false;                // fit: leave-one-run-out cross-validation too
  // validate: the tolerances of decode-only and prefill-only passes and of mixed
  // batches, percent; with `check`, exit kValidateCheckFailed unless every row is
  // predicted within its own.
  double tolerance_pct = 5;
  double mixed_tolerance_pct = 10;
  bool check = false;
  std::string steps_path;  // validate: another profile's [step] rows to predict; empty: its own
  std::string shard;       // plan: "I/N", one shard of the candidates; empty: all
  std::vector<std::string> operands;  // plan merge: the shards' directories
};

// kvsim validate --check's exit code when a row is outside its tolerance or not
// predictable (2 is bad input, 3 an internal error, 1 any other error).
inline constexpr int kValidateCheckFailed = 4;

// options.out_dir, or reports/runs/<config name><suffix>.
std::string DefaultOutDir(const CommandOptions& options, const char* suffix);

// kvsim run: one simulation; writes outputs and prints a summary. Returns the exit code.
int RunCommand(const CommandOptions& options, std::ostream& out);

// kvsim compare: one simulation per compare entry (default: static, paged,
// vattention 2 MiB, vattention 64 KiB) on the same workload; writes DIR/<label>/
// and DIR/compare.json and prints the side-by-side table.
int CompareCommand(const CommandOptions& options, std::ostream& out);

// kvsim sweep: the scenario at each rate of options.rates_qps, once per compare entry
// (default: the four KV managers); writes DIR/<label>/rate_<qps>/ (summary.json,
// config.yaml) and DIR/sweep.json, and prints throughput and p99 latency per rate.
// Under mpirun (MpiSize() > 1) the runs spread over the ranks (mpi_ranks.h) and rank 0
// alone writes and prints: the bytes one process writes, but for the wall times.
int SweepCommand(const CommandOptions& options, std::ostream& out);

// kvsim report: DIR/report.html and DIR/report.md from the outputs in DIR, drawn by
// tools/report/kvsim_report.py with Debian's python3 and matplotlib. Returns its exit code.
int ReportCommand(const CommandOptions& options, std::ostream& out);

// kvsim validate: the [step] rows of the kvprobe profile options.config_path
// (whole forward passes timed on the GPU), or of options.steps_path when set (another
// run's passes, on a GPU of the same name), predicted by the profiled model built from
// the kernel rows of options.config_path and by the roofline model
// (sim/timing/validate.h), on the GPU card options.gpu or, when empty, the card in
// <models>/gpu/ whose device_names hold the [step] rows' profile's gpu_name. Prints the rows with
// each model's error and the mean absolute errors per kind and per model; writes DIR/validate.json
// when options.out_dir is set. options.overrides may set timing.engine.kernel_gap_s,
// timing.profiled.* and timing.roofline.* (efficiencies). Returns 0 when the rows were predicted
// (the errors are results); throws InputError on bad input.
int ValidateCommand(const CommandOptions& options, std::ostream& out);

// kvsim fit: fits the free timing terms of the fit file options.config_path
// (sim/config/fit_config.h) to its measured runs by simulating them
// (sim/fit/fitter.h); with options.holdout, also predicts each run from a fit on the
// others. Writes DIR/calibration.yaml (for timing.calibration), DIR/fit.json and
// DIR/workloads/ and prints the terms and, per run and metric, measured, before and
// after. Returns 0, or 2 when the solver stops without meeting a tolerance (then no
// calibration.yaml is written).
int FitCommand(const CommandOptions& options, std::ostream& out);

// kvsim plan: capacity planning and fleet sizing under SLOs (sim/planner/planner.h);
// writes DIR/plan.csv and DIR/plan.json and prints the ranked table ending with the
// recommendation. Under mpirun (MpiSize() > 1) the candidates spread over the ranks
// and rank 0 alone writes and prints; with options.shard "I/N" it evaluates one shard
// and writes DIR/shard.json (sim/app/plan_shards.h). Returns the exit code.
int PlanCommand(const CommandOptions& options, std::ostream& out);

// kvsim plan merge DIR...: the shards in options.operands merged into the outputs
// one process writes (plan.csv, plan.json, the printed plan), after checking they
// are every shard of one plan. Returns the exit code.
int PlanMergeCommand(const CommandOptions& options, std::ostream& out);

}  // namespace kvsim
