// Outputs of runs and comparisons: summary.json, requests.csv, timeseries.csv,
// the resolved config, compare.json, and the tables printed on the terminal.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/core/file_writer.h"
#include "sim/metrics/json_writer.h"
#include "sim/metrics/metrics.h"
#include "sim/simulator/simulator.h"

namespace kvsim {

// Writes {mean, p50, p90, p99} under `key`.
void WritePercentiles(JsonWriter& j, std::string_view key, const Percentiles& p);

// `value` in `format` (e.g. "{:.3f}"), or "n/a" when it is NaN (a statistic of no
// values, Percentiles::OrNaN).
std::string FormatOrNa(double value, std::string_view format);

// summary.json of one run (keys documented in README.md).
std::string SummaryJson(const Summary& summary, const Simulation& sim);

// The files written into one output directory DIR (created if missing), listed
// with their size and CRC-32 in DIR/manifest.json, written last by Close(), which
// `kvsim report` verifies. A command's top directory is a StagedDirectory, so what
// a reader sees there is whole; the manifest also catches files changed or cut
// short afterwards. Throws InputError naming DIR or the file when it cannot write.
class Manifest {
 public:
  explicit Manifest(const std::filesystem::path& dir);
  // Writes DIR/name whole (FileWriter) and lists it.
  void Write(const std::string& name, std::string_view text);
  // Lists a file committed through `committed`.
  void Add(const std::string& name, const FileWriter& committed);
  // Writes DIR/manifest.json. Once, after the last file.
  void Close();
  const std::filesystem::path& path() const { return dir_; }

 private:
  struct File {
    std::string name;
    int64_t bytes;
    uint32_t crc32;
  };
  std::filesystem::path dir_;
  std::vector<File> files_;
};

// One run's output directory DIR (a StagedDirectory's path, or a folder in one,
// so it starts empty). requests.csv and timeseries.csv (as the config's output
// section asks) are streamed while the run goes, through fixed-size buffers, so
// memory does not grow with the trace; summary.json, config.yaml and the manifest
// are written by Finish. Every file is written as NAME.partial and renamed when
// complete.
//
// requests.csv: one row per finished request, in completion order:
//   id,replica,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,
//   output_tokens,preemptions
// timeseries.csv with output.timeseries_interval_s = 0: one row per iteration, in
// the order MetricsObserver receives them (by start time, then replica):
//   time_s,replica,duration_s,running,waiting,prefill_tokens,decode_tokens,
//   allocated_bytes,live_bytes,cached_bytes,exposed_overhead_s
// with an interval I > 0: one row per replica per interval [k I, (k+1) I) in which
// an iteration of that replica starts (an iteration counts wholly in the interval it
// starts in), by k, then replica:
//   time_s (k I),replica,interval_s,iterations,busy_s (sum of durations),
//   mean_running (duration-weighted),max_running,max_waiting,prefill_tokens,
//   decode_tokens (sums),mean_allocated_bytes,peak_allocated_bytes,mean_live_bytes,
//   mean_cached_bytes (duration-weighted, rounded),exposed_overhead_s (sum)
// Times are seconds with nine decimals, exact from the integer nanoseconds.
class RunOutputWriter : public MetricsObserver {
 public:
  // Creates DIR and opens the CSVs. Throws InputError when DIR cannot be written.
  RunOutputWriter(const std::filesystem::path& dir, const OutputConfig& output);
  ~RunOutputWriter() override;

  void OnRequest(const RequestRecord& record) override;
  void OnIteration(const IterationSample& sample) override;
  bool WantsIterations() const override { return output_.timeseries_csv; }

  // After the run: completes the CSVs and writes summary.json and config.yaml
  // (`resolved_yaml`). Throws InputError when a file cannot be written.
  void Finish(const Simulation& sim, const Summary& summary, const std::string& resolved_yaml);

 private:
  // One replica's open interval (interval mode).
  struct Interval {
    int64_t index = -1;  // k; -1: none open
    int64_t iterations = 0;
    Nanos busy{0}, exposed{0};
    double running_ns = 0, allocated_ns = 0, live_ns = 0, cached_ns = 0;
    int64_t max_running = 0, max_waiting = 0, prefill_tokens = 0, decode_tokens = 0;
    int64_t peak_allocated = 0;
  };
  void WriteInterval(int64_t replica, const Interval& x);
  // Writes and closes every replica's open interval before interval `index`, by
  // (interval, replica).
  void CloseIntervalsBefore(int64_t index);

  std::filesystem::path dir_;
  OutputConfig output_;
  Manifest out_;
  std::unique_ptr<FileWriter> requests_, timeseries_;
  std::vector<Interval> open_;  // by replica
  int64_t latest_index_ = -1;   // the latest interval an iteration started in
};

// A readable summary of one run.
std::string FormatSummary(const Summary& summary, const Simulation& sim);

// The run's GPUs: "2 replica(s) x 4 H100-SXM (TP 4)", with ", router R" when it has
// more than one replica.
std::string DeploymentText(const Simulation& sim);
// The run's KV manager with what sizes it: "paged (16-token blocks)", "vattention
// (64 KiB pages, uvm VMM)", "static (reserves max_model_len)".
std::string KvManagerText(const ScenarioConfig& c);

// This kvsim's version ("0.1.0"), which every JSON document it writes records as
// "kvsim_version" (summary.json's, plan.json's and sweep.json's top level).
const char* KvsimVersion();

// One line per distinct caveat among `labelled` (a label and its caveats, e.g. a
// run's Simulation::timing_caveats): "caveat: TEXT" when it concerns every label, else
// "caveat (LABEL, LABEL): TEXT". Empty when there are none. `prefix` replaces
// "caveat" (e.g. "assumed" for Simulation::timing_assumptions).
std::string FormatCaveats(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& labelled,
    const char* prefix = "caveat");

}  // namespace kvsim
