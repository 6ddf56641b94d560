// kvsim run and kvsim compare.
#include "sim/app/commands.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
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

namespace {

// One simulation of a compare or sweep: its config tree, the built simulation and,
// after RunJobs, its summary.
struct Job {
  std::string label;
  ConfigTree tree;
  std::unique_ptr<Simulation> sim;
  Summary summary;
  std::exception_ptr error;
};

// Builds the job for `tree` with `overrides` applied; errors name `what`.
Job BuildJob(const std::string& label, ConfigTree tree,
             const std::vector<std::pair<std::string, std::string>>& overrides,
             const std::string& what) {
  try {
    for (const auto& [key, value] : overrides) tree.Set(key, value);
    ScenarioConfig config = DecodeScenario(tree, DefaultModelsDir());
    config.compare.clear();
    auto sim = BuildSimulation(config);
    return {label, std::move(tree), std::move(sim), {}, nullptr};
  } catch (const InputError& err) {
    throw InputError(fmt::format("{}: {}", what, err.what()));
  }
}

// The jobs' timing caveats by label, for FormatCaveats.
std::vector<std::pair<std::string, std::vector<std::string>>> Labelled(
    const std::vector<Job>& jobs) {
  std::vector<std::pair<std::string, std::vector<std::string>>> caveats;
  for (const Job& job : jobs) caveats.emplace_back(job.label, job.sim->timing_caveats());
  return caveats;
}

// The jobs' assumed terms by label, for FormatCaveats(..., "assumed").
std::vector<std::pair<std::string, std::vector<std::string>>> LabelledAssumptions(
    const std::vector<Job>& jobs) {
  std::vector<std::pair<std::string, std::vector<std::string>>> assumed;
  for (const Job& job : jobs) assumed.emplace_back(job.label, job.sim->timing_assumptions());
  return assumed;
}

// Runs the jobs on up to `width` threads (0: all cores); each simulation is
// deterministic on its own, so the results do not depend on the width.
void RunJobs(std::vector<Job>& jobs, int width) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const size_t threads_n = static_cast<size_t>(width > 0 ? width : cores);
  std::atomic<size_t> next{0};
  {
    std::vector<std::jthread> threads;
    for (size_t t = 0; t < std::min(threads_n, jobs.size()); ++t) {
      threads.emplace_back([&] {
        for (size_t i = next++; i < jobs.size(); i = next++) {
          try {
            jobs[i].summary = jobs[i].sim->Run();
          } catch (...) {
            jobs[i].error = std::current_exception();
          }
        }
      });
    }
  }
  for (const Job& job : jobs) {
    if (job.error) std::rethrow_exception(job.error);
  }
}

std::vector<CompareEntry> EntriesOf(const ConfigTree& base) {
  const ScenarioConfig config = DecodeScenario(base, DefaultModelsDir());
  return config.compare.empty() ? DefaultCompareEntries() : config.compare;
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) throw InputError(fmt::format("{}: cannot write", path.string()));
}

}  // namespace

int CompareCommand(const CommandOptions& o, std::ostream& out) {
  const ConfigTree base = LoadWithOverrides(o);
  // Build every run first, so a bad entry fails before any simulation starts.
  std::vector<Job> jobs;
  for (const CompareEntry& e : EntriesOf(base)) {
    jobs.push_back(BuildJob(e.label, base, e.overrides, "compare entry '" + e.label + "'"));
  }
  RunJobs(jobs, o.jobs);

  const std::string dir = DefaultOutDir(o, "-compare");
  std::vector<LabeledRun> runs;
  for (const Job& job : jobs) {
    WriteRunOutputs((fs::path(dir) / job.label).string(), *job.sim, job.summary,
                    ResolvedYaml(job.tree, job.sim->config()));
    runs.push_back({job.label, job.summary, SummaryJson(job.summary, *job.sim)});
  }
  WriteText(fs::path(dir) / "compare.json", CompareJson(runs));
  if (!o.quiet) {
    const Simulation& first = *jobs.front().sim;
    const ScenarioConfig& c = first.config();
    out << fmt::format("{} on {} x {} (TP {}), scheduler {}, {} requests; {}\n", first.model().name,
                       c.deployment.replicas, first.gpu().name, c.deployment.tensor_parallel,
                       SchedulerTypeName(c.scheduler.type), jobs.front().summary.requests_total,
                       first.TimingLine());
    out << FormatCompareTable(runs);
    out << FormatVerdict(runs);
    out << FormatCaveats(Labelled(jobs));
    out << FormatCaveats(LabelledAssumptions(jobs), "assumed");
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

int SweepCommand(const CommandOptions& o, std::ostream& out) {
  if (o.rates_qps.empty())
    throw InputError("kvsim sweep: --rates is required, e.g. --rates 1,2,4,8");
  const ConfigTree base = LoadWithOverrides(o);
  const std::vector<CompareEntry> entries = EntriesOf(base);
  std::vector<Job> jobs;
  std::vector<double> job_rates;
  for (const CompareEntry& e : entries) {
    for (double rate : o.rates_qps) {
      auto overrides = e.overrides;
      overrides.emplace_back("workload.arrival.rate_qps", fmt::format("{:.9g}", rate));
      overrides.emplace_back("output.requests_csv", "false");
      overrides.emplace_back("output.timeseries_csv", "false");
      jobs.push_back(BuildJob(e.label, base, overrides,
                              fmt::format("sweep entry '{}' at {:g} QPS", e.label, rate)));
      job_rates.push_back(rate);
    }
  }
  RunJobs(jobs, o.jobs);

  const std::string dir = DefaultOutDir(o, "-sweep");
  std::string json = "{\n  \"rates_qps\": [";
  for (size_t i = 0; i < o.rates_qps.size(); ++i) {
    json += fmt::format("{}{:.9g}", i ? ", " : "", o.rates_qps[i]);
  }
  json += "],\n  \"runs\": [";
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& job = jobs[i];
    const std::string run_dir =
        (fs::path(dir) / job.label / fmt::format("rate_{:g}", job_rates[i])).string();
    WriteRunOutputs(run_dir, *job.sim, job.summary, ResolvedYaml(job.tree, job.sim->config()));
    std::string summary = SummaryJson(job.summary, *job.sim);
    summary.pop_back();  // the trailing newline
    json += fmt::format("{}\n    {{\"label\": {}, \"rate_qps\": {:.9g}, \"summary\": {}}}",
                        i ? "," : "", JsonWriter::Quote(job.label), job_rates[i], summary);
  }
  json += "\n  ]\n}\n";
  WriteText(fs::path(dir) / "sweep.json", json);

  if (!o.quiet) {
    std::string header = fmt::format("{:>10}", "QPS");
    for (const CompareEntry& e : entries) header += fmt::format("{:>34}", e.label);
    out << jobs.front().sim->TimingLine() << "\n";
    out << "throughput (req/s) / TTFT p99 (s) / E2E p99 (s) per offered load\n" << header << "\n";
    for (size_t r = 0; r < o.rates_qps.size(); ++r) {
      std::string line = fmt::format("{:>10g}", o.rates_qps[r]);
      for (size_t e = 0; e < entries.size(); ++e) {
        const Summary& s = jobs[e * o.rates_qps.size() + r].summary;
        line += fmt::format("{:>34}", fmt::format("{:.2f} / {:.3f} / {:.2f}", s.requests_per_s,
                                                  s.ttft_s.p99, s.e2e_s.p99));
      }
      out << line << "\n";
    }
    out << FormatCaveats(Labelled(jobs));
    out << FormatCaveats(LabelledAssumptions(jobs), "assumed");
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

int ReportCommand(const CommandOptions& o, std::ostream& out) {
  const std::string script = std::string(KVSIM_DATA_DIR) + "/tools/report/kvsim_report.py";
  const char* env_python = std::getenv("KVSIM_PYTHON");
  const std::string python = env_python && *env_python ? env_python : "/usr/bin/python3";
  if (!fs::is_directory(o.config_path)) throw InputError(o.config_path + ": no such directory");
  if (!fs::exists(script)) throw InputError(script + ": report script not found");
  // Arguments are quoted for the shell; a single quote inside is closed, escaped, reopened.
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  out.flush();
  const int status =
      std::system((quote(python) + " " + quote(script) + " " + quote(o.config_path)).c_str());
  if (status == -1) throw InputError("kvsim report: cannot start " + python);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
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
  WriteText(fs::path(dir) / "plan.csv", PlanCsv(result));
  WriteText(fs::path(dir) / "plan.json", PlanJson(result, plan));
  if (!o.quiet) {
    out << FormatPlan(result);
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

}  // namespace kvsim
