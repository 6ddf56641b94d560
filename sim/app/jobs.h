// What kvsim run, compare and sweep share: the config loaded with --set overrides,
// the config as run (each run's config.yaml), and the jobs of compare and sweep (one
// built simulation each), run on a process's threads.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/app/commands.h"
#include "sim/app/progress.h"
#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/metrics/metrics.h"
#include "sim/simulator/outputs.h"
#include "sim/simulator/simulator.h"

namespace kvsim {

// The config file options.config_path with options.overrides applied, in order.
ConfigTree LoadWithOverrides(const CommandOptions& options);

// The config as it was run: overrides applied, file paths made absolute so the copy
// written next to the outputs (config.yaml) can be rerun from there.
std::string ResolvedYaml(ConfigTree tree, const ScenarioConfig& config);

// One simulation of a compare or sweep: its config tree, the built simulation and,
// after it ran, its summary.
struct Job {
  std::string label;
  ConfigTree tree;
  std::unique_ptr<Simulation> sim;
  Summary summary;
  std::unique_ptr<RunOutputWriter> writer;  // streams the run's CSVs (AttachWriter)
};

// Builds the job for `entry` on the base (`tree`, decoded as `base`), then `extra`
// applied; errors name `what`. An entry's own overrides (a compare entry's `set:`)
// are decoded with the base's text, once; typed deltas apply to the decoded config.
// The tree kept for the run's config.yaml says every change as a key.
Job BuildJob(const CompareEntry& entry, ConfigTree tree, const ScenarioConfig& base,
             const ScenarioDelta& extra, const std::string& what);

// The compare entries of `base`: its own `compare:` list, else the default four.
std::vector<CompareEntry> EntriesOf(const ScenarioConfig& base);

// Refuses (InputError) a --set override (`assignments`, "key=value") that changes no
// run: a key every entry of `entries` sets itself (or a map above it), one `extra`
// (the change every run makes: sweep's rate) sets, or a kv_cache key that none of
// the runs' KV managers (`kv_types`) reads. `command` names the command for messages.
void CheckOverridesUsed(const std::vector<std::string>& assignments,
                        const std::vector<CompareEntry>& entries, const ScenarioDelta& extra,
                        const std::vector<KvManagerType>& kv_types, const std::string& command);

// Decodes each compare entry of `base` (its file's `compare:` list) with its overrides
// on `tree` (the file as written, without the run's --set), as compare would, so that
// `run` refuses a config whose list holds a bad key even though it runs none of the
// entries. Throws InputError naming the entry.
void CheckCompareEntries(const ConfigTree& tree, const ScenarioConfig& base);

// The header of a comparison of `jobs` (compare's runs, or sweep's at one rate): what
// the runs share, as `kvsim run` states one run ("MODEL on R replica(s) x N GPU (TP n),
// scheduler S, N requests; TIMING", TIMING the timing line's parts every entry has),
// then a line for each of those facts (and the trace) that differs between entries,
// naming each entry's value (for timing, the parts it adds: its paged kernel or VMM
// backend): a compare entry may change any key.
std::string CompareHeader(const std::vector<const Job*>& jobs);
std::string CompareHeader(const std::vector<Job>& jobs);

// Label and lines, per job, for FormatCaveats.
using LabelledLines = std::vector<std::pair<std::string, std::vector<std::string>>>;
// The jobs' timing caveats by label.
LabelledLines Labelled(const std::vector<Job>& jobs);
// The jobs' assumed terms by label, for FormatCaveats(..., "assumed").
LabelledLines LabelledAssumptions(const std::vector<Job>& jobs);

// Gives `job` its output directory `dir` (created), its CSVs streamed while it runs.
// Before the job runs.
void AttachWriter(Job& job, const std::filesystem::path& dir);
// AttachWriter for each job, into dir_of(its index).
void AttachWriters(std::vector<Job>& jobs,
                   const std::function<std::filesystem::path(size_t)>& dir_of);

// Runs the jobs on up to `width` threads (0: all cores), counting each finished one
// in `progress`; each simulation is deterministic on its own, so the results do not
// depend on the width.
void RunJobs(std::vector<Job>& jobs, int width, Progress& progress);

}  // namespace kvsim
