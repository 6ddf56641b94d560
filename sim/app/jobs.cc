// The configs and jobs of kvsim run, compare and sweep (jobs.h).
#include "sim/app/jobs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <functional>

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
  return base.compare.empty() ? DefaultCompareEntries(base) : base.compare;
}

namespace {

// Whether setting `set` replaces `key`: the same key path or a map above it.
bool Replaces(const std::string& set, const std::string& key) {
  return key == set || (key.size() > set.size() && key.starts_with(set) && key[set.size()] == '.');
}

bool EntrySets(const CompareEntry& e, const std::string& key) {
  for (const auto& [set, value] : e.overrides) {
    if (Replaces(set, key)) return true;
  }
  for (const auto& [set, value] : e.delta.AsOverrides()) {
    if (Replaces(set, key)) return true;
  }
  return false;
}

std::string TypeNames(const std::vector<KvManagerType>& types) {
  std::vector<std::string> names;
  for (const KvManagerType t : types) {
    const std::string name(kKvManagerTypes.Name(t));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

void CheckOverridesUsed(const std::vector<std::string>& assignments,
                        const std::vector<CompareEntry>& entries, const ScenarioDelta& extra,
                        const std::vector<KvManagerType>& kv_types, const std::string& command) {
  for (const CompareEntry& e : entries) {
    for (const auto& [key, value] : e.overrides) {
      for (const auto& [set, unused] : extra.AsOverrides()) {
        if (Replaces(set, key)) {  // a map above it carries other keys too
          throw InputError(
              fmt::format("{}: {}: {} sets {} for every run itself, so the entry's "
                          "value changes nothing; leave it out",
                          e.overrides_where, key, command, set));
        }
      }
    }
  }
  for (const std::string& assignment : assignments) {
    const std::string key = assignment.substr(0, assignment.find('='));
    for (const auto& [set, value] : extra.AsOverrides()) {
      if (Replaces(set, key)) {
        throw InputError(
            fmt::format("--set {}: {} sets {} for every run itself, so the "
                        "override changes nothing; leave it out",
                        assignment, command, set));
      }
    }
    if (!entries.empty() && std::all_of(entries.begin(), entries.end(),
                                        [&](const CompareEntry& e) { return EntrySets(e, key); })) {
      throw InputError(fmt::format(
          "--set {}: every compare entry sets {} itself, so the override changes no run; {}",
          assignment, key,
          command == "compare"
              ? "use kvsim run for one setting, or write the entries you want as the config's "
                "compare list"
              : fmt::format("give the {} one entry of that setting: --set 'compare=[{{label: "
                            "mine, set: {{{}: {}}}}}]'",
                            command, key, assignment.substr(assignment.find('=') + 1))));
    }
    if (!key.starts_with("kv_cache.")) continue;
    const std::vector<KvManagerType> readers = KvCacheKeyReaders(key.substr(9));
    const bool read = std::any_of(kv_types.begin(), kv_types.end(), [&](KvManagerType t) {
      return std::find(readers.begin(), readers.end(), t) != readers.end();
    });
    if (!read && kv_types.size() == 1) {
      const bool type_set =
          std::any_of(assignments.begin(), assignments.end(),
                      [](const std::string& a) { return a.starts_with("kv_cache.type="); });
      throw InputError(
          fmt::format("--set {}: the {} KV manager does not read it ({} only); {}", assignment,
                      TypeNames(kv_types), TypeNames(readers),
                      type_set ? "leave it out" : "set kv_cache.type too, or leave it out"));
    }
    if (!read) {
      throw InputError(
          fmt::format("--set {}: no run of this {} reads it ({} only; the runs' KV "
                      "managers: {}); leave it out, or add a compare entry that "
                      "uses it",
                      assignment, command, TypeNames(readers), TypeNames(kv_types)));
    }
  }
}

void CheckCompareEntries(const ConfigTree& tree, const ScenarioConfig& base) {
  for (const CompareEntry& e : base.compare) {
    if (e.overrides.empty()) continue;
    try {
      ConfigTree entry = tree;
      for (const auto& [key, value] : e.overrides) entry.Set(key, value, e.overrides_where);
      DecodeScenario(entry, DefaultModelsDir());
    } catch (const InputError& err) {
      throw InputError(fmt::format("compare entry '{}': {}", e.label, err.what()));
    }
  }
}

namespace {

// The parts of a Simulation::TimingLine ("timing: roofline; engine vllm_v1; ...").
std::vector<std::string> TimingParts(const std::string& line) {
  std::vector<std::string> parts;
  for (size_t begin = 0;;) {
    const size_t end = line.find("; ", begin);
    parts.push_back(line.substr(begin, end - begin));
    if (end == std::string::npos) return parts;
    begin = end + 2;
  }
}

// The compare table's header: what the runs share, as `kvsim run` states one run
// ("MODEL on R x GPU (TP n), scheduler S, N requests; TIMING", TIMING the timing
// line's parts every entry has), then a line for each of those facts (and the
// trace) that differs between entries, naming each entry's value (for timing, the
// parts it adds: its paged kernel or VMM backend): a compare entry may change any
// key.
}  // namespace

std::string CompareHeader(const std::vector<const Job*>& jobs) {
  struct Fact {
    std::string name, varied;  // varied: its text in the header when entries differ
    std::vector<std::string> values;
  };
  std::vector<Fact> facts = {{"model", "models per entry", {}},
                             {"deployment", "on GPUs per entry", {}},
                             {"scheduler", "schedulers per entry", {}},
                             {"requests", "requests per entry", {}},
                             {"trace", "", {}}};
  std::vector<std::vector<std::string>> timing;
  for (const Job* job : jobs) {
    const Simulation& sim = *job->sim;
    const ScenarioConfig& c = sim.config();
    facts[0].values.push_back(sim.model().name);
    facts[1].values.push_back("on " + DeploymentText(sim));
    facts[2].values.push_back(fmt::format("scheduler {}", SchedulerTypeName(c.scheduler.type)));
    facts[3].values.push_back(
        c.workload.max_requests > job->summary.requests_total
            ? fmt::format("{} requests (all the workload holds; max_requests {})",
                          job->summary.requests_total, c.workload.max_requests)
            : fmt::format("{} requests", job->summary.requests_total));
    facts[4].values.push_back(
        c.workload.trace_path.empty()
            ? "none (synthetic lengths)"
            : std::filesystem::path(c.workload.trace_path).filename().string());
    timing.push_back(TimingParts(sim.TimingLine()));
  }
  const auto varies = [](const Fact& f) {
    return std::adjacent_find(f.values.begin(), f.values.end(), std::not_equal_to<>()) !=
           f.values.end();
  };
  const auto text = [&](const Fact& f) { return varies(f) ? f.varied : f.values.front(); };
  // The timing parts every entry has, in the first entry's order.
  std::vector<std::string> shared;
  for (const std::string& part : timing.front()) {
    if (std::all_of(timing.begin(), timing.end(), [&](const std::vector<std::string>& t) {
          return std::find(t.begin(), t.end(), part) != t.end();
        })) {
      shared.push_back(part);
    }
  }
  std::string out = fmt::format("{} {}, {}, {}; {}\n", text(facts[0]), text(facts[1]),
                                text(facts[2]), text(facts[3]),
                                shared.empty() ? std::string("timing per entry")
                                               : fmt::format("{}", fmt::join(shared, "; ")));
  for (const Fact& f : facts) {
    if (!varies(f)) continue;
    std::vector<std::string> each;
    for (size_t i = 0; i < jobs.size(); ++i) {
      each.push_back(fmt::format("{}: {}", jobs[i]->label, f.values[i]));
    }
    out += fmt::format("{} per entry: {}\n", f.name, fmt::join(each, "; "));
  }
  std::vector<std::string> own;  // each entry's timing parts beyond the shared ones
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::vector<std::string> extra;
    for (const std::string& part : timing[i]) {
      if (std::find(shared.begin(), shared.end(), part) == shared.end()) extra.push_back(part);
    }
    if (!extra.empty())
      own.push_back(fmt::format("{}: {}", jobs[i]->label, fmt::join(extra, ", ")));
  }
  if (!own.empty()) out += fmt::format("timing per entry: {}\n", fmt::join(own, "; "));
  return out;
}

std::string CompareHeader(const std::vector<Job>& jobs) {
  std::vector<const Job*> each;
  for (const Job& job : jobs) each.push_back(&job);
  return CompareHeader(each);
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
