// kvsim sweep: every compare entry at every rate, on one process's threads or, under
// mpirun, over every rank's threads (mpi_ranks.h) with rank 0 writing the outputs.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/app/commands.h"
#include "sim/app/file_bundle.h"
#include "sim/app/jobs.h"
#include "sim/app/mpi_ranks.h"
#include "sim/app/progress.h"
#include "sim/core/check.h"
#include "sim/core/json_value.h"
#include "sim/core/staged_directory.h"
#include "sim/metrics/json_writer.h"
#include "sim/metrics/summary_codec.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/compare_outputs.h"
#include "sim/simulator/outputs.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

// `rate_qps` as the shortest text that reads back as the same double ("4", "12.5",
// "3.3333333334"), for folders, the table and sweep.json: distinct rates never print
// alike (JsonWriter's 10 significant digits would merge 1.00000001 with 1).
std::string RateText(double rate_qps) { return fmt::format("{}", rate_qps); }

// A sweep's runs: each compare entry at each rate, entry by entry (run i is entry
// i / rates, rate i % rates).
struct SweepRuns {
  ConfigTree tree;  // the config with --set applied
  ScenarioConfig base;
  std::vector<CompareEntry> entries;
  std::vector<double> rates_qps;

  size_t size() const { return entries.size() * rates_qps.size(); }
  const CompareEntry& entry(size_t i) const { return entries[i / rates_qps.size()]; }
  double rate_qps(size_t i) const { return rates_qps[i % rates_qps.size()]; }
  // Run i's folder in the output directory, "<label>/rate_<qps>" (RateText).
  fs::path Folder(size_t i) const {
    return fs::path(entry(i).label) / fmt::format("rate_{}", RateText(rate_qps(i)));
  }
};

SweepRuns LoadSweep(const CommandOptions& o) {
  if (o.rates_qps.empty()) {
    throw InputError("kvsim sweep: --rates is required, e.g. --rates 1,2,4,8");
  }
  SweepRuns s{LoadWithOverrides(o), {}, {}, o.rates_qps};
  s.base = DecodeScenario(s.tree, DefaultModelsDir());
  s.entries = EntriesOf(s.base);
  return s;
}

// Run i built: its entry at its rate, without the per-request and per-iteration CSVs.
Job BuildRun(const SweepRuns& s, size_t i) {
  ScenarioDelta at_rate;
  at_rate.rate_qps = s.rate_qps(i);
  at_rate.requests_csv = false;
  at_rate.timeseries_csv = false;
  return BuildJob(
      s.entry(i), s.tree, s.base, at_rate,
      fmt::format("sweep entry '{}' at {} QPS", s.entry(i).label, RateText(s.rate_qps(i))));
}

// Refuses --set overrides (and compare entries' keys) no run of the sweep uses
// (CheckOverridesUsed): the rate and the CSVs are the sweep's own.
void CheckOverrides(const CommandOptions& o, const SweepRuns& s, const std::vector<Job>& jobs) {
  std::vector<KvManagerType> kv_types;
  for (const Job& job : jobs) kv_types.push_back(job.sim->config().kv_cache.type);
  ScenarioDelta at_rate;
  at_rate.rate_qps = 1;
  at_rate.requests_csv = false;
  at_rate.timeseries_csv = false;
  CheckOverridesUsed(o.overrides, s.entries, at_rate, kv_types, "sweep");
}

// Every run built, so that a bad entry fails before any simulation starts.
std::vector<Job> BuildRuns(const SweepRuns& s) {
  std::vector<Job> jobs;
  jobs.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) jobs.push_back(BuildRun(s, i));
  return jobs;
}

// sweep.json: kvsim's version, the rates, and per run its label, rate and
// summary.json's object.
std::string SweepJson(const SweepRuns& s, const std::vector<Job>& jobs) {
  JsonWriter j;
  j.BeginObject().Field("kvsim_version", KvsimVersion()).BeginArray("rates_qps");
  for (double rate : s.rates_qps) j.Raw({}, RateText(rate));
  j.EndArray().BeginArray("runs");
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string summary = SummaryJson(jobs[i].summary, *jobs[i].sim);
    if (summary.ends_with('\n')) summary.pop_back();
    j.BeginObject()
        .Field("label", jobs[i].label)
        .Raw("rate_qps", RateText(s.rate_qps(i)))
        .Raw("summary", summary)
        .EndObject();
  }
  j.EndArray().EndObject();
  return j.str();
}

// A cell's mark: " *" when the run is overloaded (its queue grew through the trace and
// never drained: Summary::overloaded), " q" when its median request waited over a
// second before its first iteration (as compare's verdict says), "" otherwise.
std::string LoadMark(const Summary& m) {
  if (m.overloaded) return " *";
  return MedianWaitOverASecond(m) ? " q" : "";
}

// What the marks mean (when a cell has one), and the runs that refused requests for
// max_model_len (their latencies hold only the requests they admitted).
std::string SweepFootnotes(const SweepRuns& s, const std::vector<Job>& jobs) {
  std::string out;
  const auto marked = [&](const char* mark) {
    return std::any_of(jobs.begin(), jobs.end(),
                       [mark](const Job& j) { return LoadMark(j.summary) == mark; });
  };
  if (marked(" *"))
    out +=
        "*: overloaded, the queue grows through the trace and never drains (it does not keep "
        "up)\n";
  if (marked(" q")) out += "q: the median request waits over 1 s before its first iteration\n";
  std::vector<std::string> labels;  // "LABEL at RATE QPS", one per run
  std::vector<std::pair<std::string, const Summary*>> labelled;
  for (size_t i = 0; i < jobs.size(); ++i) {
    labels.push_back(fmt::format("{} at {} QPS", jobs[i].label, RateText(s.rate_qps(i))));
  }
  for (size_t i = 0; i < jobs.size(); ++i) labelled.emplace_back(labels[i], &jobs[i].summary);
  const std::string refusals = RefusalText(labelled);
  if (!refusals.empty()) {
    out += refusals + ", their prompts at or past max_model_len (in no latency above)\n";
  }
  return out;
}

// The table of throughput and p99 latencies per rate and entry, the caveats and where
// the outputs went.
void PrintSweep(std::ostream& out, const SweepRuns& s, const std::vector<Job>& jobs,
                const std::string& dir) {
  // The QPS column fits the longest rate (RateText), 10 characters at least.
  size_t width = 10;
  for (double rate : s.rates_qps) width = std::max(width, RateText(rate).size() + 1);
  std::string header = fmt::format("{:>{}}", "QPS", width);
  for (const CompareEntry& e : s.entries) header += fmt::format("{:>34}", e.label);
  std::vector<const Job*> first_rate;  // one run per entry: their header
  for (size_t e = 0; e < s.entries.size(); ++e) first_rate.push_back(&jobs[e * s.rates_qps.size()]);
  out << CompareHeader(first_rate);
  out << "throughput (req/s) / TTFT p99 (ms) / E2E p99 (s) per offered load\n" << header << "\n";
  for (size_t r = 0; r < s.rates_qps.size(); ++r) {
    std::string line = fmt::format("{:>{}}", RateText(s.rates_qps[r]), width);
    for (size_t e = 0; e < s.entries.size(); ++e) {
      const Summary& m = jobs[e * s.rates_qps.size() + r].summary;
      line += fmt::format(
          "{:>34}",
          fmt::format("{:.2f} / {} / {}{}", m.requests_per_s,
                      FormatOrNa(1e3 * m.ttft_s.OrNaN(&Percentiles::p99), "{:.1f}"),
                      FormatOrNa(m.e2e_s.OrNaN(&Percentiles::p99), "{:.2f}"), LoadMark(m)));
    }
    out << line << "\n";
  }
  out << SweepFootnotes(s, jobs);
  out << FormatCaveats(Labelled(jobs));
  out << FormatCaveats(LabelledAssumptions(jobs), "assumed");
  out << fmt::format("outputs written to {}/\n", dir);
}

// Writes sweep.json beside the finished run folders, commits and prints.
void FinishSweep(const CommandOptions& o, std::ostream& out, const SweepRuns& s,
                 const std::vector<Job>& jobs, StagedDirectory& staged, const std::string& dir) {
  Manifest top(staged.path());
  top.Write("sweep.json", SweepJson(s, jobs));
  top.Close();
  staged.Commit();
  if (!o.quiet) PrintSweep(out, s, jobs, dir);
}

// The progress line of `runs` runs, on a terminal's stderr unless quiet.
std::unique_ptr<Progress> SweepProgress(const CommandOptions& o, size_t runs) {
  return std::make_unique<Progress>("kvsim sweep", "runs", static_cast<int64_t>(runs),
                                    !o.quiet && StderrIsTerminal(), std::cerr, ProgressDelay());
}

// The sweep on this process's threads.
int SweepHere(const CommandOptions& o, std::ostream& out, const SweepRuns& s) {
  std::vector<Job> jobs = BuildRuns(s);
  CheckOverrides(o, s, jobs);
  const std::string dir = DefaultOutDir(o, "-sweep");
  StagedDirectory staged(dir, o.force);
  AttachWriters(jobs, [&](size_t i) { return staged.path() / s.Folder(i); });
  const std::unique_ptr<Progress> progress = SweepProgress(o, jobs.size());
  RunJobs(jobs, o.jobs, *progress);
  for (const Job& job : jobs) {
    job.writer->Finish(*job.sim, job.summary, ResolvedYaml(job.tree, job.sim->config()));
  }
  FinishSweep(o, out, s, jobs, staged, dir);
  return 0;
}

// --- Over MPI ranks ------------------------------------------------------------------

// Runs `job` with its outputs (summary.json, config.yaml, manifest.json) written to
// `dir`; returns its summary.
Summary RunInto(Job& job, const fs::path& dir) {
  AttachWriter(job, dir);
  Summary summary = job.sim->Run().summary;
  job.writer->Finish(*job.sim, summary, ResolvedYaml(job.tree, job.sim->config()));
  return summary;
}

// A run's result as it travels to rank 0: its summary (EncodeSummary, one line), a
// line break, then its folder's files (EncodeBundle; none when rank 0 ran it into
// its output directory itself).
std::string EncodeRun(const Summary& summary, const std::vector<BundledFile>& files) {
  return EncodeSummary(summary) + "\n" + EncodeBundle(files);
}

struct DecodedRun {
  Summary summary;
  std::vector<BundledFile> files;
};

DecodedRun DecodeRun(std::string_view bytes, const std::string& where) {
  const size_t end = bytes.find('\n');
  if (end == std::string_view::npos) {
    throw InputError(where + ": a sweep run's result without its line break");
  }
  return {DecodeSummary(ParseJson(std::string(bytes.substr(0, end)), where), where),
          DecodeBundle(bytes.substr(end + 1), where)};
}

// Every rank loads the sweep; rank 0 builds every run (for sweep.json, the table and
// as the runs its own threads take), the other ranks build the runs they are handed,
// run each in a directory of their own and send its files back. Rank 0 unpacks them
// into the staged output directory, so the ranks need not share a filesystem.
int SweepOnRanks(const CommandOptions& o, std::ostream& out, const SweepRuns& s) {
  const bool lead = MpiRank() == 0;
  const std::string dir = DefaultOutDir(o, "-sweep");
  std::vector<Job> jobs;
  std::optional<StagedDirectory> staged;
  std::unique_ptr<Progress> progress;
  if (lead) {
    jobs = BuildRuns(s);
    CheckOverrides(o, s, jobs);
    staged.emplace(dir, o.force);
    progress = SweepProgress(o, jobs.size());
  }
  const auto run = [&](size_t i) {
    if (lead) return EncodeRun(RunInto(jobs[i], staged->path() / s.Folder(i)), {});
    Job job = BuildRun(s, i);
    const ScratchDirectory scratch("kvsim-sweep-run");
    const Summary summary = RunInto(job, scratch.path());
    return EncodeRun(summary, ReadBundleFiles(scratch.path()));
  };
  const auto gather = [&](size_t i, const std::string& bytes, int rank) {
    DecodedRun decoded = DecodeRun(bytes, fmt::format("rank {}", rank));
    jobs[i].summary = std::move(decoded.summary);
    WriteBundleFiles(decoded.files, staged->path() / s.Folder(i));
    progress->Add();
  };
  if (!RunOnRanks(s.size(), o.jobs, run, gather)) return 0;  // not rank 0: rank 0 writes
  progress->Finish();
  FinishSweep(o, out, s, jobs, *staged, dir);
  return 0;
}

}  // namespace

int SweepCommand(const CommandOptions& o, std::ostream& out) {
  const SweepRuns s = LoadSweep(o);
  return MpiSize() > 1 ? SweepOnRanks(o, out, s) : SweepHere(o, out, s);
}

}  // namespace kvsim
