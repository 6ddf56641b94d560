// Outputs of runs and comparisons: summary.json, requests.csv, timeseries.csv,
// the resolved config, compare.json, and the tables printed on the terminal.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/metrics/json_writer.h"
#include "sim/metrics/metrics.h"
#include "sim/simulator/simulator.h"

namespace kvsim {

// Writes {mean, p50, p90, p99} under `key`.
void WritePercentiles(JsonWriter& j, std::string_view key, const Percentiles& p);

// summary.json of one run (keys documented in README.md).
std::string SummaryJson(const Summary& summary, const Simulation& sim);

// Writes `text` to `path` (bytes as given). Throws InputError "path: cannot write".
void WriteFile(const std::filesystem::path& path, const std::string& text);

// Writes DIR/summary.json, DIR/requests.csv, DIR/timeseries.csv (as the config's
// output section asks) and DIR/config.yaml (`resolved_yaml`). Creates DIR.
// Throws InputError when DIR cannot be written.
void WriteRunOutputs(const std::string& dir, const Simulation& sim, const Summary& summary,
                     const std::string& resolved_yaml);

// A readable summary of one run.
std::string FormatSummary(const Summary& summary, const Simulation& sim);

struct LabeledRun {
  std::string label;
  Summary summary;
  std::string summary_json;
};

// compare.json: a list of {label, summary}.
std::string CompareJson(const std::vector<LabeledRun>& runs);

// One line per distinct caveat among `labelled` (a label and its caveats, e.g. a
// run's Simulation::timing_caveats): "caveat: TEXT" when it concerns every label, else
// "caveat (LABEL, LABEL): TEXT". Empty when there are none. `prefix` replaces
// "caveat" (e.g. "assumed" for Simulation::timing_assumptions).
std::string FormatCaveats(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& labelled,
    const char* prefix = "caveat");

// The side-by-side table, with ratios to the run labelled "paged" (or the first
// paged run) where one exists.
std::string FormatCompareTable(const std::vector<LabeledRun>& runs);
// One sentence under the table: the run with the lowest E2E p50 (its ratio to the
// paged run when there is one), the least KV memory at peak, the largest running
// batch, and the runs that did not
// keep up with the load (TTFT p50 above 1 s and ten times the best run's).
// "verdict: ...\n"; empty for no runs.
std::string FormatVerdict(const std::vector<LabeledRun>& runs);

}  // namespace kvsim
