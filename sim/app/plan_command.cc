// kvsim plan and kvsim plan merge: on one process, on MPI ranks, or in shards.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <ostream>

#include "sim/app/commands.h"
#include "sim/app/plan_mpi.h"
#include "sim/app/plan_shards.h"
#include "sim/app/progress.h"
#include "sim/config/plan_config.h"
#include "sim/core/check.h"
#include "sim/core/staged_directory.h"
#include "sim/planner/planner.h"
#include "sim/simulator/outputs.h"

namespace kvsim {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

PlanConfig LoadPlanWarning(const std::string& path, bool print_warnings) {
  PlanConfig plan = LoadPlan(path);
  if (print_warnings) {
    for (const std::string& warning : plan.warnings) {
      std::cerr << "kvsim: warning: " << warning << "\n";
    }
  }
  return plan;
}

// The progress hook and log of a plan command; `progress` draws the line.
PlanOptions Options(const CommandOptions& o, std::ostream& out, bool quiet, const PlanConfig& plan,
                    std::unique_ptr<Progress>& progress) {
  PlanOptions options;
  options.jobs = o.jobs;
  if (!quiet) options.log = [&out](const std::string& line) { out << line << std::endl; };
  // What the progress counts: one search per candidate and scenario.
  const char* unit = plan.scenarios.size() > 1 ? "candidate-scenario searches" : "candidates";
  options.progress = [&progress, quiet, unit](int64_t done, int64_t total) {
    if (!progress) {
      progress = std::make_unique<Progress>("kvsim plan", unit, total, !quiet && StderrIsTerminal(),
                                            std::cerr, ProgressDelay());
    }
    progress->Add(done);
  };
  return options;
}

// Exit status of a plan that no candidate meets: the outputs are written, but there is
// no fleet to deploy, which a batch job has to tell from a recommendation (0), an
// input error (2), an internal error (3) and validate --check's misses (4).
constexpr int kExitInfeasible = 5;
// Exit status of a recommendation whose whole-fleet check did not verify it on some
// scenario (it missed the SLOs, or the trace held too few requests to judge): there is
// a fleet, but not one shown to meet them.
constexpr int kExitNotVerified = 6;

// Writes plan.csv, plan.json (and with several scenarios plan_scenarios.csv) to `dir`
// and prints the plan unless quiet; returns the command's exit status: 0 with a
// recommendation verified (or not checked: verify: false), kExitNotVerified when its
// check missed, kExitInfeasible without one (either said on stderr when quiet, since
// nothing else is printed then).
int WritePlan(const CommandOptions& o, std::ostream& out, const std::string& dir,
              const PlanResult& result, const PlanConfig& plan) {
  StagedDirectory staged(dir, o.force);
  Manifest top(staged.path());
  top.Write("plan.csv", PlanCsv(result));
  top.Write("plan.json", PlanJson(result, plan));
  if (plan.scenarios.size() > 1) top.Write("plan_scenarios.csv", PlanScenariosCsv(result, plan));
  top.Close();
  staged.Commit();
  if (!o.quiet) {
    out << FormatPlan(result, plan);
    out << fmt::format("outputs written to {}/\n", dir);
  }
  if (result.recommendation) {
    const Recommendation& rec = *result.recommendation;
    if (rec.checks.empty() || rec.verified) return 0;
    if (o.quiet) {
      std::cerr << fmt::format(
          "kvsim plan: a recommendation, NOT verified: its whole-fleet check missed the SLOs or "
          "the trace held too few requests to judge (exit status {}); see {}/plan.json\n",
          kExitNotVerified, dir);
    }
    return kExitNotVerified;
  }
  if (o.quiet) {
    std::cerr << fmt::format(
        "kvsim plan: infeasible: no candidate meets the SLOs at any load tried, or none could "
        "be built (exit status {}); see {}/plan.csv\n",
        kExitInfeasible, dir);
  }
  return kExitInfeasible;
}

// One shard: its candidates on this process's threads, into DIR/shard.json.
int PlanShard(const CommandOptions& o, std::ostream& out, const PlanConfig& plan) {
  const ShardSpec shard = ParseShard(o.shard);
  const auto start = Clock::now();
  std::unique_ptr<Progress> progress;
  const PlanOptions options = Options(o, out, o.quiet, plan, progress);
  const PreparedPlan prepared = PreparePlan(plan, options);
  const std::string dir =
      DefaultOutDir(o, fmt::format("-plan-shard{}of{}", shard.index, shard.count).c_str());
  StagedDirectory staged(dir, o.force);
  std::vector<CandidateResult> candidates = prepared.candidates;
  const std::vector<size_t> indices = ShardIndices(candidates.size(), shard);
  EvaluateOnThreads(plan, prepared, options, indices, candidates);
  if (progress) progress->Finish();
  Manifest top(staged.path());
  top.Write("shard.json", ShardJson(plan, PlanFingerprint(plan, prepared), shard, candidates.size(),
                                    indices, candidates, SecondsSince(start)));
  top.Close();
  staged.Commit();
  if (!o.quiet) {
    out << fmt::format(
        "shard {}/{}: {} of {} candidates evaluated, written to {}/shard.json\n"
        "merge every shard with: kvsim plan merge DIR... --out DIR\n",
        shard.index, shard.count, indices.size(), candidates.size(), dir);
  }
  return 0;
}

// Every rank prepares the plan; rank 0 gathers, finishes and writes.
int PlanOnRanks(const CommandOptions& o, std::ostream& out, const PlanConfig& plan) {
  const auto start = Clock::now();
  const bool lead = MpiRank() == 0;
  std::unique_ptr<Progress> progress;
  const PlanOptions options = Options(o, out, o.quiet || !lead, plan, progress);
  const PreparedPlan prepared = PreparePlan(plan, options);
  if (lead && !o.quiet) out << fmt::format("plan: on {} MPI ranks\n", MpiSize());
  std::optional<std::vector<CandidateResult>> evaluated = EvaluateOnRanks(plan, prepared, options);
  if (!evaluated) return 0;  // not rank 0: rank 0 writes
  if (progress) progress->Finish();
  PlanResult result = FinishPlan(plan, prepared, std::move(*evaluated), options);
  result.wall_s = SecondsSince(start);
  return WritePlan(o, out, DefaultOutDir(o, "-plan"), result, plan);
}

}  // namespace

int PlanCommand(const CommandOptions& o, std::ostream& out) {
  if (!o.overrides.empty()) {
    throw InputError("kvsim plan: --set is not supported; put overrides under the plan's `set:`");
  }
  const PlanConfig plan = LoadPlanWarning(o.config_path, MpiRank() == 0);
  if (!o.shard.empty()) {
    if (MpiSize() > 1) {
      throw InputError(
          "kvsim plan: --shard splits a plan over separate jobs; under mpirun the "
          "ranks share it already: drop one of the two");
    }
    return PlanShard(o, out, plan);
  }
  if (MpiSize() > 1) return PlanOnRanks(o, out, plan);
  std::unique_ptr<Progress> progress;
  const PlanOptions options = Options(o, out, o.quiet, plan, progress);
  const std::string dir = DefaultOutDir(o, "-plan");
  const PlanResult result = RunPlan(plan, options);
  if (progress) progress->Finish();
  return WritePlan(o, out, dir, result, plan);
}

int PlanMergeCommand(const CommandOptions& o, std::ostream& out) {
  const auto start = Clock::now();
  if (o.operands.empty()) throw InputError("kvsim plan merge: no shard directory given");
  if (o.out_dir.empty()) {
    throw InputError("kvsim plan merge: --out DIR is required (where plan.csv and plan.json go)");
  }
  std::vector<LoadedShard> shards;
  double longest_shard_s = 0;
  for (const std::string& dir : o.operands) {
    shards.push_back(LoadShard(dir));
    longest_shard_s = std::max(longest_shard_s, shards.back().wall_s);
  }
  PlanConfig plan = LoadPlanWarning(shards.front().plan_file, true);
  std::unique_ptr<Progress> progress;
  const PlanOptions options = Options(o, out, o.quiet, plan, progress);
  const PreparedPlan prepared = PreparePlan(plan, options);
  std::vector<CandidateResult> merged =
      MergeShards(shards, prepared, PlanFingerprint(plan, prepared));
  plan.plan_file = shards.front().plan_as_given;  // the outputs name it as one run would
  PlanResult result = FinishPlan(plan, prepared, std::move(merged), options);
  // The shards ran side by side: the longest of them, then this merge.
  result.wall_s = longest_shard_s + SecondsSince(start);
  return WritePlan(o, out, o.out_dir, result, plan);
}

}  // namespace kvsim
