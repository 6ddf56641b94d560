// kvsim run and kvsim compare.
#include "sim/app/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <thread>

#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/metrics/json_writer.h"
#include "sim/planner/planner.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/outputs.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

ConfigTree LoadWithOverrides(const CommandOptions& o) {
  ConfigTree tree = ConfigTree::Load(o.config_path);
  for (const std::string& assignment : o.overrides) tree.Set(assignment);
  return tree;
}

// The config as it was run: overrides applied, file paths made absolute so the
// copy written next to the outputs can be rerun from there.
std::string ResolvedYaml(ConfigTree tree, const ScenarioConfig& config) {
  if (!config.workload.trace_path.empty()) {
    tree.Set("workload.trace", JsonWriter::Quote(config.workload.trace_path));
  }
  if (!config.timing.profile_path.empty()) {
    tree.Set("timing.profile", JsonWriter::Quote(config.timing.profile_path));
  }
  for (const auto& [key, path] :
       {std::pair<const char*, const std::string&>{"model", config.model_path},
        {"gpu", config.gpu_path}}) {
    tree.Set(key, JsonWriter::Quote(path));
  }
  return tree.Dump();
}

std::string DefaultOutDir(const CommandOptions& o, const char* suffix) {
  if (!o.out_dir.empty()) return o.out_dir;
  return (fs::path("reports") / "runs" / (fs::path(o.config_path).stem().string() + suffix))
      .string();
}

}  // namespace

int RunCommand(const CommandOptions& o, std::ostream& out) {
  const ConfigTree tree = LoadWithOverrides(o);
  const ScenarioConfig config = DecodeScenario(tree, DefaultModelsDir());
  std::unique_ptr<Simulation> sim = BuildSimulation(config);
  const Summary summary = sim->Run();
  const std::string dir = DefaultOutDir(o, "");
  WriteRunOutputs(dir, *sim, summary, ResolvedYaml(tree, config));
  if (!o.quiet) {
    out << FormatSummary(summary, *sim);
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

int CompareCommand(const CommandOptions& o, std::ostream& out) {
  const ConfigTree base = LoadWithOverrides(o);
  const ScenarioConfig base_config = DecodeScenario(base, DefaultModelsDir());
  const std::vector<CompareEntry> entries =
      base_config.compare.empty() ? DefaultCompareEntries() : base_config.compare;

  // Build every run first, so a bad entry fails before any simulation starts.
  struct Job {
    std::string label;
    ConfigTree tree;
    std::unique_ptr<Simulation> sim;
    Summary summary;
    std::exception_ptr error;
  };
  std::vector<Job> jobs;
  for (const CompareEntry& e : entries) {
    ConfigTree tree = base;
    try {
      for (const auto& [key, value] : e.overrides) tree.Set(key, value);
      ScenarioConfig config = DecodeScenario(tree, DefaultModelsDir());
      config.compare.clear();
      jobs.push_back({e.label, tree, BuildSimulation(config), {}, nullptr});
    } catch (const InputError& err) {
      throw InputError(fmt::format("compare entry '{}': {}", e.label, err.what()));
    }
  }

  // Independent simulations run on threads; each is deterministic on its own.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const size_t width = static_cast<size_t>(o.jobs > 0 ? o.jobs : cores);
  for (size_t start = 0; start < jobs.size(); start += width) {
    std::vector<std::jthread> threads;
    for (size_t i = start; i < std::min(jobs.size(), start + width); ++i) {
      threads.emplace_back([&job = jobs[i]] {
        try {
          job.summary = job.sim->Run();
        } catch (...) {
          job.error = std::current_exception();
        }
      });
    }
  }
  for (const Job& job : jobs) {
    if (job.error) std::rethrow_exception(job.error);
  }

  const std::string dir = DefaultOutDir(o, "-compare");
  std::vector<LabeledRun> runs;
  for (const Job& job : jobs) {
    WriteRunOutputs((fs::path(dir) / job.label).string(), *job.sim, job.summary,
                    ResolvedYaml(job.tree, job.sim->config()));
    runs.push_back({job.label, job.summary, SummaryJson(job.summary, *job.sim)});
  }
  {
    std::ofstream f(fs::path(dir) / "compare.json", std::ios::binary);
    f << CompareJson(runs);
    if (!f) throw InputError(fmt::format("{}/compare.json: cannot write", dir));
  }
  if (!o.quiet) {
    const Simulation& first = *jobs.front().sim;
    const ScenarioConfig& c = first.config();
    out << fmt::format("{} on {} x {} (TP {}), scheduler {}, {} requests\n", first.model().name,
                       c.deployment.replicas, first.gpu().name, c.deployment.tensor_parallel,
                       SchedulerTypeName(c.scheduler.type), jobs.front().summary.requests_total);
    out << FormatCompareTable(runs);
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

int PlanCommand(const CommandOptions& o, std::ostream& out) {
  if (!o.overrides.empty()) {
    throw InputError("kvsim plan: --set is not supported; put overrides under the plan's `set:`");
  }
  const PlanConfig plan = LoadPlan(o.config_path);
  PlanOptions options;
  options.jobs = o.jobs;
  if (!o.quiet) options.log = [&out](const std::string& line) { out << line << std::endl; };
  const PlanResult result = RunPlan(plan, options);
  const std::string dir = DefaultOutDir(o, "-plan");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw InputError(fmt::format("{}: cannot create output directory: {}", dir, ec.message()));
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"plan.csv", PlanCsv(result)},
                                   {"plan.json", PlanJson(result, plan)}}) {
    std::ofstream f(fs::path(dir) / name, std::ios::binary);
    f << text;
    if (!f) throw InputError(fmt::format("{}/{}: cannot write", dir, name));
  }
  if (!o.quiet) {
    out << FormatPlan(result);
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

}  // namespace kvsim
