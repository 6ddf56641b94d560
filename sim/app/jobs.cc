// The configs and jobs of kvsim run, compare and sweep (jobs.h).
#include "sim/app/jobs.h"

#include <fmt/format.h>

#include "sim/core/check.h"
#include "sim/core/parallel.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/builder.h"

namespace kvsim {

ConfigTree LoadWithOverrides(const CommandOptions& o) {
  ConfigTree tree = ConfigTree::Load(o.config_path);
  for (const std::string& assignment : o.overrides) tree.Set(assignment);
  return tree;
}

std::string ResolvedYaml(ConfigTree tree, const ScenarioConfig& config) {
  if (!config.workload.trace_path.empty()) {
    tree.Set("workload.trace", JsonWriter::Quote(config.workload.trace_path));
  }
  if (!config.timing.profile_path.empty()) {
    tree.Set("timing.profile", JsonWriter::Quote(config.timing.profile_path));
  }
  if (!config.timing.calibration.path.empty()) {
    tree.Set("timing.calibration", JsonWriter::Quote(config.timing.calibration.path));
  }
  for (const auto& [key, path] :
       {std::pair<const char*, const std::string&>{"model", config.model_path},
        {"gpu", config.gpu_path}}) {
    tree.Set(key, JsonWriter::Quote(path));
  }
  return tree.Dump();
}

Job BuildJob(const CompareEntry& entry, ConfigTree tree, const ScenarioConfig& base,
             const ScenarioDelta& extra, const std::string& what) {
  try {
    for (const auto& [key, value] : entry.overrides) tree.Set(key, value, entry.overrides_where);
    ScenarioConfig config =
        entry.overrides.empty() ? base : DecodeScenario(tree, DefaultModelsDir());
    config = ApplyDelta(ApplyDelta(config, entry.delta), extra);
    config.compare.clear();
    for (const ScenarioDelta* d : {&entry.delta, &extra}) {
      for (const auto& [key, value] : d->AsOverrides()) tree.Set(key, value);
    }
    auto sim = BuildSimulation(config);
    return {entry.label, tree, std::move(sim), {}, nullptr};
  } catch (const InputError& err) {
    throw InputError(fmt::format("{}: {}", what, err.what()));
  }
}

std::vector<CompareEntry> EntriesOf(const ScenarioConfig& base) {
  return base.compare.empty() ? DefaultCompareEntries() : base.compare;
}

LabelledLines Labelled(const std::vector<Job>& jobs) {
  LabelledLines caveats;
  caveats.reserve(jobs.size());
  for (const Job& job : jobs) caveats.emplace_back(job.label, job.sim->timing_caveats());
  return caveats;
}

LabelledLines LabelledAssumptions(const std::vector<Job>& jobs) {
  LabelledLines assumed;
  assumed.reserve(jobs.size());
  for (const Job& job : jobs) assumed.emplace_back(job.label, job.sim->timing_assumptions());
  return assumed;
}

void AttachWriter(Job& job, const std::filesystem::path& dir) {
  job.writer = std::make_unique<RunOutputWriter>(dir, job.sim->config().output);
  job.sim->AddObserver(job.writer.get());
}

void AttachWriters(std::vector<Job>& jobs,
                   const std::function<std::filesystem::path(size_t)>& dir_of) {
  for (size_t i = 0; i < jobs.size(); ++i) AttachWriter(jobs[i], dir_of(i));
}

void RunJobs(std::vector<Job>& jobs, int width, Progress& progress) {
  ParallelFor(jobs.size(), width, [&](size_t i) {
    jobs[i].summary = jobs[i].sim->Run().summary;
    progress.Add();
  });
  progress.Finish();
}

}  // namespace kvsim
