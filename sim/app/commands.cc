// The kvsim subcommands run, compare, report and validate (sweep: sweep_command.cc;
// plan: plan_command.cc; fit: fit_command.cc).
#include "sim/app/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <ostream>
#include <set>

#include "sim/app/jobs.h"
#include "sim/app/progress.h"
#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/core/staged_directory.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/compare_outputs.h"
#include "sim/simulator/outputs.h"
#include "sim/timing/profile_schema.h"
#include "sim/timing/validate.h"

namespace kvsim {
namespace fs = std::filesystem;

std::string DefaultOutDir(const CommandOptions& o, const char* suffix) {
  if (!o.out_dir.empty()) return o.out_dir;
  return (fs::path("reports") / "runs" / (fs::path(o.config_path).stem().string() + suffix))
      .string();
}

namespace {

// Counts finished requests into a Progress.
class ProgressObserver : public MetricsObserver {
 public:
  explicit ProgressObserver(Progress& progress) : progress_(progress) {}
  void OnRequest(const RequestRecord&) override { progress_.Add(); }
  void OnIteration(const IterationSample&) override {}
  bool WantsIterations() const override { return false; }

 private:
  Progress& progress_;
};

}  // namespace

int RunCommand(const CommandOptions& o, std::ostream& out) {
  const ConfigTree tree = LoadWithOverrides(o);
  const ScenarioConfig config = DecodeScenario(tree, DefaultModelsDir());
  CheckOverridesUsed(o.overrides, {}, {}, {config.kv_cache.type}, "kvsim run");
  // On the file as written: a --set for this run may not suit an entry it does not run.
  CheckCompareEntries(ConfigTree::Load(o.config_path), config);
  std::unique_ptr<Simulation> sim = BuildSimulation(config);
  const std::string dir = DefaultOutDir(o, "");
  StagedDirectory staged(dir, o.force);
  RunOutputWriter writer(staged.path(), config.output);
  sim->AddObserver(&writer);
  Progress progress("kvsim run", "requests finished", config.workload.max_requests,
                    !o.quiet && StderrIsTerminal(), std::cerr, ProgressDelay());
  ProgressObserver counter(progress);
  sim->AddObserver(&counter);
  const Summary summary = sim->Run().summary;
  progress.Finish();
  writer.Finish(*sim, summary, ResolvedYaml(tree, config));
  staged.Commit();
  if (!o.quiet) {
    out << FormatSummary(summary, *sim);
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

int CompareCommand(const CommandOptions& o, std::ostream& out) {
  const ConfigTree tree = LoadWithOverrides(o);
  const ScenarioConfig base = DecodeScenario(tree, DefaultModelsDir());
  // Build every run first, so a bad entry fails before any simulation starts.
  const std::vector<CompareEntry> entries = EntriesOf(base);
  std::vector<Job> jobs;
  std::vector<KvManagerType> kv_types;
  for (const CompareEntry& e : entries) {
    jobs.push_back(BuildJob(e, tree, base, {}, "compare entry '" + e.label + "'"));
    kv_types.push_back(jobs.back().sim->config().kv_cache.type);
  }
  CheckOverridesUsed(o.overrides, entries, {}, kv_types, "compare");
  const std::string dir = DefaultOutDir(o, "-compare");
  StagedDirectory staged(dir, o.force);
  Manifest top(staged.path());
  AttachWriters(jobs, [&](size_t i) { return staged.path() / jobs[i].label; });
  Progress progress("kvsim compare", "runs", static_cast<int64_t>(jobs.size()),
                    !o.quiet && StderrIsTerminal(), std::cerr, ProgressDelay());
  RunJobs(jobs, o.jobs, progress);

  std::vector<LabeledRun> runs;
  for (const Job& job : jobs) {
    job.writer->Finish(*job.sim, job.summary, ResolvedYaml(job.tree, job.sim->config()));
    runs.push_back({job.label, job.summary, SummaryJson(job.summary, *job.sim)});
  }
  top.Write("compare.json", CompareJson(runs));
  top.Close();
  staged.Commit();
  if (!o.quiet) {
    out << CompareHeader(jobs);
    out << FormatCompareTable(runs);
    out << FormatVerdict(runs);
    out << FormatCaveats(Labelled(jobs));
    out << FormatCaveats(LabelledAssumptions(jobs), "assumed");
    out << fmt::format("outputs written to {}/\n", dir);
  }
  return 0;
}

int ReportCommand(const CommandOptions& o, std::ostream& out) {
  const std::string script = DataDir() + "/tools/report/kvsim_report.py";
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

namespace {

// The card `value` of `kind` ("gpu" or "llm") as ResolveCardPath finds it, a path
// relative to the working directory; its errors start with `prefix`.
std::string CardPath(const std::string& value, const std::string& models_dir,
                     const std::string& kind, const std::string& prefix) {
  try {
    return ResolveCardPath(value, models_dir, kind, fs::current_path().string());
  } catch (const InputError& e) {
    throw InputError(prefix + e.what());
  }
}

// The card in <models_dir>/gpu/ whose device_names hold the profile's gpu_name. Throws
// InputError listing every card's device_names when none or several do.
GpuSpec GpuCardFor(const Profile& profile, const std::string& models_dir) {
  const std::string& measured_on = profile.MetaText(std::string(profile_schema::meta::kGpuName));
  const fs::path dir = fs::path(models_dir) / "gpu";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InputError(
        fmt::format("{}: no GPU card directory (--models DIR holds gpu/ and llm/)", dir.string()));
  }
  std::map<std::string, GpuSpec> cards;  // by name, so the messages are sorted
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") {
      cards.emplace(e.path().stem().string(), LoadGpuSpec(e.path().string()));
    }
  }
  std::vector<std::string> matching, listed;
  for (const auto& [name, card] : cards) {
    const auto& names = card.device_names;
    if (std::find(names.begin(), names.end(), measured_on) != names.end()) matching.push_back(name);
    listed.push_back(names.empty() ? name + " (none)"
                                   : fmt::format("{} ('{}')", name, fmt::join(names, "', '")));
  }
  if (matching.size() == 1) return cards.at(matching.front());
  if (matching.empty()) {
    throw InputError(fmt::format(
        "{}: measured on '{}', which no GPU card in {} lists in its device_names ({}); pass "
        "--gpu CARD, or add the name to the card of that GPU",
        profile.path(), measured_on, dir.string(), fmt::join(listed, ", ")));
  }
  throw InputError(fmt::format(
      "{}: measured on '{}', which the GPU cards {} all list in their device_names; choose one "
      "with --gpu CARD",
      profile.path(), measured_on, fmt::join(matching, ", ")));
}

// A number in [min, max] from `--set key=value`.
double SetNumber(const std::string& key, const std::string& value, double min, double max) {
  double v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !(v >= min) ||
      !(v <= max)) {
    throw InputError(fmt::format("kvsim validate: --set {}: '{}' is not a number in [{:g}, {:g}]",
                                 key, value, min, max));
  }
  return v;
}

// `kvsim validate --set key=value` assignments applied to the default setup.
ValidateConfig ValidateConfigFrom(const std::vector<std::string>& assignments) {
  ValidateConfig c;
  const std::map<std::string, double*> efficiencies = {
      {"timing.profiled.attention_prefill_efficiency", &c.profiled.attention_prefill_efficiency},
      {"timing.profiled.memory_efficiency", &c.profiled.memory_efficiency},
      {"timing.roofline.gemm_efficiency", &c.roofline.gemm_efficiency},
      {"timing.roofline.memory_efficiency", &c.roofline.memory_efficiency},
      {"timing.roofline.attention_prefill_efficiency", &c.roofline.attention_prefill_efficiency},
      {"timing.roofline.attention_decode_efficiency", &c.roofline.attention_decode_efficiency},
  };
  for (const std::string& assignment : assignments) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos) {
      throw InputError(fmt::format("kvsim validate: --set '{}' is not key.path=value", assignment));
    }
    const std::string key = assignment.substr(0, eq);
    const std::string value = assignment.substr(eq + 1);
    if (key == "timing.engine.kernel_gap_s") {
      c.engine.kernel_gap_s = SetNumber(key, value, 0, 1);
    } else if (key == "timing.profiled.prefill_attention") {
      // The message lists measured first: validate's question is the measured one.
      constexpr auto kChoices =
          kPrefillAttentions.Select({ProfiledConfig::PrefillAttention::kMeasured,
                                     ProfiledConfig::PrefillAttention::kRoofline});
      const std::optional<ProfiledConfig::PrefillAttention> choice = kChoices.Parse(value);
      if (!choice) {
        throw InputError(fmt::format("kvsim validate: --set {}: '{}' is not one of {}", key, value,
                                     kChoices.NameList()));
      }
      c.profiled.prefill_attention = *choice;
    } else if (const auto it = efficiencies.find(key); it != efficiencies.end()) {
      *it->second = SetNumber(key, value, 1e-3, 1);
    } else {
      std::vector<std::string> keys = {"timing.engine.kernel_gap_s",
                                       "timing.profiled.prefill_attention"};
      for (const auto& [k, unused] : efficiencies) keys.push_back(k);
      throw InputError(fmt::format("kvsim validate: --set {}: not a key validate uses; it uses {}",
                                   key, fmt::join(keys, ", ")));
    }
  }
  return c;
}

// One validate.json row: the step, both predictions and their errors, the classes.
void WriteStepPrediction(JsonWriter& j, const StepPrediction& p) {
  const StepRow& r = p.row;
  j.BeginObject();
  j.Field("line", int64_t{r.line});
  j.Field("model", r.model);
  j.Field("tensor_parallel", r.tensor_parallel);
  j.Field("layout", kAttentionLayouts.Name(r.layout));
  j.Field("block_tokens", r.block_tokens);
  j.Field("decode_seqs", r.decode_seqs);
  j.Field("context_tokens", r.context_tokens);
  j.Field("prefill_tokens", r.prefill_tokens);
  j.Field("graph", r.graph);
  j.Field("kind", StepKindName(r.kind()));
  j.Field("measured_us", r.time_us);
  j.Field("profiled_us", p.profiled_us);
  j.Field("profiled_error_pct", 100 * p.profiled_error());
  j.Field("roofline_us", p.roofline_us);
  j.Field("roofline_error_pct", 100 * p.roofline_error());
  // GPU time by kernel class, us: measured (each class alone) where the row has it.
  const auto classes = [&j](const char* name, const KernelClassSeconds& c) {
    j.BeginObject(name);
    j.Field("gemm", c.gemm_s * 1e6);
    j.Field("attention", c.attention_s * 1e6);
    j.Field("other", c.other_s * 1e6);
    j.Field("collectives", c.collective_s * 1e6);
    j.EndObject();
  };
  if (r.measured_classes) classes("measured_classes_us", *r.measured_classes);
  classes("profiled_classes_us", p.profiled_classes);
  classes("roofline_classes_us", p.roofline_classes);
  j.EndObject();
}

// validate.json's summary_by_class (SummarizeClassErrors).
void WriteClassSummary(JsonWriter& j, const Validation& v) {
  j.BeginArray("summary_by_class");
  for (const ClassErrorSummary& s : SummarizeClassErrors(v)) {
    j.BeginObject();
    j.Field("group", s.group);
    j.Field("rows", static_cast<int64_t>(s.rows));
    const auto error = [&j](const char* name, const ClassErrorSummary::Error& e) {
      if (e.rows == 0) return;
      j.BeginObject(name);
      j.Field("rows", static_cast<int64_t>(e.rows));
      j.Field("profiled_mean_error_pct", 100 * e.mean);
      j.Field("profiled_mean_abs_error_pct", 100 * e.mean_abs);
      j.EndObject();
    };
    error("gemm", s.gemm);
    error("attention", s.attention);
    error("other", s.other);
    error("collectives", s.collective);
    j.Field("pass_vs_classes_pct", 100 * s.pass_vs_classes);
    j.EndObject();
  }
  j.EndArray();
}

std::string ValidationJson(const Validation& v) {
  JsonWriter j;
  j.BeginObject();
  j.Field("profile", v.profile_path);
  j.Field("steps", v.steps_path);
  j.Field("measured_on", v.measured_on);
  j.Field("gpu_card", v.gpu_card);
  j.Field("error", "(predicted - measured) / measured, in percent");
  j.BeginObject("profiled");
  j.Field("prefill_attention", kPrefillAttentions.Name(v.config.profiled.prefill_attention));
  j.Field("paged_kernel", PagedKernelName(PagedKernel::kProfiled));
  j.EndObject();
  j.BeginObject("roofline");
  j.Field("gemm_efficiency", v.roofline_efficiencies.gemm_efficiency);
  j.Field("memory_efficiency", v.roofline_efficiencies.memory_efficiency);
  j.Field("attention_prefill_efficiency", v.roofline_efficiencies.attention_prefill_efficiency);
  j.Field("attention_decode_efficiency", v.roofline_efficiencies.attention_decode_efficiency);
  j.Field("paged_kernel", PagedKernelName(v.config.roofline_paged_kernel));
  j.EndObject();
  j.BeginObject("engine");
  j.Field("preset", EnginePresetName(v.config.engine.preset));
  j.Field("kernel_gap_s", v.config.engine.kernel_gap_s);
  j.EndObject();
  j.BeginObject("tolerance_pct");
  j.Field("passes", 100 * v.config.tolerance);  // decode-only and prefill-only
  j.Field("mixed", 100 * v.config.mixed_tolerance);
  j.EndObject();
  const ToleranceCount within = CountWithinTolerance(v);
  j.BeginObject("within_tolerance");
  j.Field("rows", static_cast<int64_t>(within.rows));
  j.Field("profiled", static_cast<int64_t>(within.profiled_within));
  j.Field("roofline", static_cast<int64_t>(within.roofline_within));
  j.EndObject();
  j.BeginArray("rows");
  for (const StepPrediction& p : v.rows) WriteStepPrediction(j, p);
  j.EndArray();
  j.BeginArray("summary");
  for (const ErrorSummary& s : SummarizeErrors(v)) {
    j.BeginObject();
    j.Field("group", s.group);
    j.Field("rows", static_cast<int64_t>(s.rows));
    j.Field("profiled_mean_abs_error_pct", 100 * s.profiled_mean_abs);
    j.Field("profiled_worst_line", int64_t{v.rows[s.profiled_worst].row.line});
    j.Field("profiled_worst_error_pct", 100 * v.rows[s.profiled_worst].profiled_error());
    j.Field("profiled_within_tolerance", static_cast<int64_t>(s.profiled_within));
    j.Field("roofline_mean_abs_error_pct", 100 * s.roofline_mean_abs);
    j.Field("roofline_worst_line", int64_t{v.rows[s.roofline_worst].row.line});
    j.Field("roofline_worst_error_pct", 100 * v.rows[s.roofline_worst].roofline_error());
    j.Field("roofline_within_tolerance", static_cast<int64_t>(s.roofline_within));
    j.EndObject();
  }
  j.EndArray();
  WriteClassSummary(j, v);
  j.BeginArray("not_predictable");
  for (const SkippedSteps& s : v.skipped) {
    j.BeginObject();
    j.Field("model", s.model);
    j.Field("tensor_parallel", s.tensor_parallel);
    j.BeginArray("lines");
    for (int line : s.lines) j.Field("", int64_t{line});
    j.EndArray();
    j.Field("reason", s.reason);
    j.EndObject();
  }
  j.EndArray();
  j.BeginArray("caveats");
  for (const std::string& c : v.caveats) j.Field("", c);
  j.EndArray();
  j.EndObject();
  return j.str();
}

}  // namespace

int ValidateCommand(const CommandOptions& o, std::ostream& out) {
  for (const auto& [option, pct] : {std::pair{"--tolerance", o.tolerance_pct},
                                    std::pair{"--mixed-tolerance", o.mixed_tolerance_pct}}) {
    if (!(pct > 0 && pct <= 100)) {
      throw InputError(
          fmt::format("kvsim validate: {}: {:g} is not a percentage in (0, 100]", option, pct));
    }
  }
  const Profile profile = LoadProfile(o.config_path);
  // --steps: another run's [step] rows, predicted from this profile's kernel rows.
  const std::optional<Profile> other =
      o.steps_path.empty()
          ? std::nullopt
          : std::optional<Profile>(LoadProfile(o.steps_path, RequiredSections::kMetaOnly));
  const Profile& steps = other ? *other : profile;
  RequireStepRows(steps);  // before the cards: without rows there is nothing to match
  ValidateConfig config = ValidateConfigFrom(o.overrides);
  config.tolerance = o.tolerance_pct / 100;
  config.mixed_tolerance = o.mixed_tolerance_pct / 100;
  const std::string models_dir = o.models_dir.empty() ? DefaultModelsDir() : o.models_dir;
  const GpuSpec gpu =
      o.gpu.empty() ? GpuCardFor(steps, models_dir)
                    : LoadGpuSpec(CardPath(o.gpu, models_dir, "gpu", "kvsim validate: --gpu: "));
  const std::string& measured_on = steps.MetaText(std::string(profile_schema::meta::kGpuName));
  if (!gpu.device_names.empty() && std::find(gpu.device_names.begin(), gpu.device_names.end(),
                                             measured_on) == gpu.device_names.end()) {
    throw InputError(fmt::format(
        "{}: measured on '{}', but the --gpu card {} has device_names '{}'; validate a profile "
        "against the card of the GPU it was measured on",
        steps.path(), measured_on, gpu.name, fmt::join(gpu.device_names, "', '")));
  }
  const auto load_model = [&models_dir](const std::string& name) {
    return LoadModelSpec(CardPath(name, models_dir, "llm", ""));
  };
  const Validation v = ValidateProfile(profile, steps, gpu, load_model, config);
  if (!o.out_dir.empty()) {
    StagedDirectory staged(o.out_dir, o.force);
    Manifest top(staged.path());
    top.Write("validate.json", ValidationJson(v));
    top.Close();
    staged.Commit();
  }
  if (!o.quiet) {
    out << FormatValidation(v);
    if (!o.out_dir.empty()) out << fmt::format("outputs written to {}/\n", o.out_dir);
  }
  if (!o.check) return 0;
  // The gate: every [step] row predicted, each within its tolerance.
  const ToleranceCount n = CountWithinTolerance(v);
  size_t unpredictable = 0;
  for (const SkippedSteps& s : v.skipped) unpredictable += s.lines.size();
  if (n.rows > 0 && n.profiled_within == n.rows && unpredictable == 0) return 0;
  std::cerr << fmt::format(
      "kvsim validate --check: {}: {} of {} predicted rows outside tolerance (profiled model), "
      "{} row{} not predictable\n",
      steps.path(), n.rows - n.profiled_within, n.rows, unpredictable,
      unpredictable == 1 ? "" : "s");
  return kValidateCheckFailed;
}

}  // namespace kvsim
