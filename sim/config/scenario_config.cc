// Strict decoding of scenario YAML into ScenarioConfig.
#include "sim/config/scenario_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "sim/config/calibration.h"
#include "sim/config/decode_timing.h"
#include "sim/config/map_reader.h"
#include "sim/config/scenario_resolve.h"
#include "sim/core/check.h"
#include "sim/hardware/gpu_spec.h"

namespace kvsim {

// Bounds past any real deployment, so that counts and sizes derived from them
// cannot overflow: replicas of one scenario, sequences per replica, tokens.
constexpr int64_t kMaxReplicas = 65536;
constexpr int64_t kMaxSequences = int64_t{1} << 20;
constexpr int64_t kMaxTokens = int64_t{1} << 24;
int64_t DtypeBytes(Dtype d, int64_t checkpoint_bytes) {
  switch (d) {
    case Dtype::kAuto:
      return checkpoint_bytes;
    case Dtype::kBf16:
    case Dtype::kFp16:
      return 2;
    case Dtype::kFp8:
      return 1;
  }
  return checkpoint_bytes;
}

namespace {

// A card given as a name ("Llama-3-8B") or as a path ("cards/my_model.yaml").
std::string ResolveCard(MapReader& r, const std::string& key, const std::string& models_dir,
                        const std::string& kind, const std::string& base_dir) {
  if (!r.HasScalar(key, "a card name or a card's path")) r.Fail(key, "required");
  const std::string value = r.String(key, "");  // its own errors name the key already
  try {
    return ResolveCardPath(value, models_dir, kind, base_dir);
  } catch (const InputError& e) {
    r.Fail(key, e.what());
  }
}

Dtype DecodeDtype(MapReader& r, const std::string& key, Dtype def) {
  return r.Enum(key, def, kDtypes);
}

void DecodeDeployment(MapReader r, DeploymentConfig& d) {
  d.tensor_parallel = r.Int("tensor_parallel", d.tensor_parallel, 1, 1024);
  d.replicas = r.Int("replicas", d.replicas, 1, kMaxReplicas);
  d.router = r.Enum("router", d.router, kRouterTypes);
  d.gpu_memory_utilization =
      r.Double("gpu_memory_utilization", d.gpu_memory_utilization, 0.01, 1.0);
  d.activation_reserve_bytes = r.Bytes("activation_reserve_bytes", d.activation_reserve_bytes);
  d.framework_reserve_bytes = r.Bytes("framework_reserve_bytes", d.framework_reserve_bytes);
  d.kv_capacity_bytes = r.Bytes("kv_capacity_bytes", d.kv_capacity_bytes);
  d.max_model_len = r.Int("max_model_len", d.max_model_len, 0, kMaxTokens);
  d.weight_dtype = DecodeDtype(r, "weight_dtype", d.weight_dtype);
  d.host_cpu_speed = r.Double("host_cpu_speed", d.host_cpu_speed, 0, 10);
  if (d.host_cpu_speed > 0 && d.host_cpu_speed < 0.05) {
    r.Fail("host_cpu_speed", fmt::format("must be 0 (the GPU card's host) or in [0.05, 10], got {}",
                                         d.host_cpu_speed));
  }
  r.Finish();
}

// workload.columns: the header names of a csv trace's columns; required with format csv
// and refused with any other format (`columns:` alone reads as `columns: {}`).
void DecodeTraceColumns(MapReader& r, WorkloadConfig& w) {
  MapReader m = r.Child("columns");
  if (!r.Present("columns")) {
    if (w.trace_format == TraceFormat::kCsv) {
      r.Fail("format", fmt::format("format csv needs workload.columns, the header names of its "
                                   "columns: {{prompt_tokens: NAME, output_tokens: NAME}} and "
                                   "optionally arrival: NAME, arrival_unit: {}",
                                   kArrivalUnits.NameList("|")));
    }
    return;
  }
  if (w.trace_format != TraceFormat::kCsv) {
    r.Fail("columns", fmt::format("valid only with format: csv (the format is {}, whose columns "
                                  "are fixed)",
                                  TraceFormatName(w.trace_format)));
  }
  auto column = [&](const char* key, const char* what) {
    if (!m.HasScalar(key, "the header name of a column")) {
      if (what != nullptr) {
        r.Fail("columns",
               fmt::format("missing key {}: the header name of the {} column", key, what));
      }
      return std::string();
    }
    std::string name = m.String(key, "");
    if (name.empty()) m.Fail(key, "must name a column of the trace's header");
    return name;
  };
  w.columns.arrival = column("arrival", nullptr);
  w.columns.arrival_unit = m.Enum("arrival_unit", ArrivalUnit::kSeconds, kArrivalUnits);
  if (m.Has("arrival_unit") && w.columns.arrival.empty()) {
    m.Fail("arrival_unit", "describes the arrival column, but workload.columns.arrival is not set");
  }
  w.columns.prompt_tokens = column("prompt_tokens", "prompt length");
  w.columns.output_tokens = column("output_tokens", "output length");
  m.Finish();
}

// workload.shared_prefix and workload.sessions: each off unless present, and then
// needing the keys that define it (tokens; turns and think_time_s); a section written
// with no value is present, and misses them.
void DecodePrefixSharing(MapReader& r, WorkloadConfig& w) {
  MapReader p = r.Child("shared_prefix");
  w.shared_prefix.tokens = p.Int("tokens", 0, 1, kMaxSharedPrefixTokens);
  w.shared_prefix.fraction = p.Double("fraction", w.shared_prefix.fraction, 0, 1);
  w.shared_prefix.groups = p.Int("groups", w.shared_prefix.groups, 1, kMaxSharedPrefixGroups);
  p.Finish();
  if (r.Present("shared_prefix") && !p.Has("tokens")) {
    r.Fail("shared_prefix", "missing key tokens: the length of each shared prompt, in tokens");
  }
  MapReader s = r.Child("sessions");
  w.sessions.turns = s.Int("turns", 0, 1, kMaxSessionTurns);
  w.sessions.think_time_s = s.Double("think_time_s", 0, 0, kMaxThinkTimeSeconds);
  s.Finish();
  if (r.Present("sessions")) {
    if (!s.Has("turns")) r.Fail("sessions", "missing key turns: the turns of each session");
    if (!s.Has("think_time_s")) {
      r.Fail("sessions",
             "missing key think_time_s: seconds from one turn's arrival to the next's (0 sends "
             "a session's turns together)");
    }
  }
}

// Arrival and length keys the process or length source does not read would change
// nothing: errors, but for one the file wrote for the process or source an override has
// since replaced (left behind, as scheduler keys are), and none in a config with a
// compare list (its entries may switch the process or source and read them).
void RefuseUnreadWorkloadKeys(MapReader& r, const WorkloadConfig& w,
                              const ScenarioSources& sources) {
  if (sources.has_compare_entries) return;
  MapReader a = r.Child("arrival");
  if (sources.cv_set && w.arrival != ArrivalProcess::kGamma &&
      (!a.Overridden("process") || a.Overridden("cv"))) {
    a.Fail("cv", fmt::format("{} arrivals do not read it (gamma only); set process: gamma, or "
                             "leave it out",
                             kArrivalProcesses.Name(w.arrival)));
  }
  MapReader l = r.Child("lengths");
  const bool switched = l.Overridden("source");
  const auto unread = [&](const char* key, LengthSource reader) {
    if (l.Present(key) && w.lengths != reader && (!switched || l.Overridden(key))) {
      l.Fail(key, fmt::format("the {} length source does not read it ({} only); leave it out",
                              kLengthSources.Name(w.lengths), kLengthSources.Name(reader)));
    }
  };
  for (const char* key : {"prompt_tokens", "output_tokens"}) unread(key, LengthSource::kFixed);
  for (const char* key :
       {"min_prompt_tokens", "max_prompt_tokens", "min_output_tokens", "max_output_tokens"}) {
    unread(key, LengthSource::kUniform);
  }
}

// A benchmark_serving trace whose config leaves workload.arrival.process unset gets the
// arrival process its file records (ApplyRecordedArrivals); its file is read here, once.
void DecodeWorkload(MapReader r, WorkloadConfig& w, ScenarioSources& sources) {
  const std::string& base_dir = sources.base_dir;
  w.trace_path = Resolve(base_dir, r.String("trace", ""));
  w.trace_format = r.Enum("format", TraceFormat::kAuto, kTraceFormats);
  DecodeTraceColumns(r, w);
  w.max_requests = r.Int("max_requests", w.max_requests, 0, int64_t{1} << 32);
  {
    MapReader a = r.Child("arrival");
    sources.process_set = a.Has("process");
    sources.rate_set = a.Has("rate_qps");
    sources.cv_set = a.Has("cv");
    w.arrival = a.Enum("process", w.arrival, kArrivalProcesses);
    w.rate_qps = a.Double("rate_qps", w.rate_qps, 0, 1e9);
    // Gamma shape 1 / cv^2: beyond [1e-3, 1e3] it under- or overflows the sampler.
    w.cv = a.Double("cv", w.cv, 1e-3, 1e3);
    a.Finish();
  }
  {
    MapReader l = r.Child("lengths");
    w.lengths = l.Enum("source", w.lengths, kLengthSources);
    w.fixed_prompt_tokens = l.Int("prompt_tokens", w.fixed_prompt_tokens, 0, kMaxTokens);
    w.fixed_output_tokens = l.Int("output_tokens", w.fixed_output_tokens, 0, kMaxTokens);
    w.min_prompt_tokens = l.Int("min_prompt_tokens", w.min_prompt_tokens, 0, kMaxTokens);
    w.max_prompt_tokens = l.Int("max_prompt_tokens", w.max_prompt_tokens, 0, kMaxTokens);
    w.min_output_tokens = l.Int("min_output_tokens", w.min_output_tokens, 0, kMaxTokens);
    w.max_output_tokens = l.Int("max_output_tokens", w.max_output_tokens, 0, kMaxTokens);
    l.Finish();
  }
  DecodePrefixSharing(r, w);
  r.Finish();
  if (!sources.process_set && IsBenchmarkServingTrace(w)) {
    sources.trace_where = r.Where(r.Value("trace"), "workload.trace");
    ReadRecordedArrivals(sources, w);
  }
  RefuseUnreadWorkloadKeys(r, w, sources);
  try {
    ValidateWorkloadConfig(w, "workload");
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", r.context().file, e.what()));
  }
}

void DecodeScheduler(MapReader r, SchedulerConfig& s) {
  s.type = r.Enum("type", s.type, kSchedulerTypes);
  s.max_num_seqs = r.Int("max_num_seqs", s.max_num_seqs, 1, kMaxSequences);
  s.max_num_batched_tokens =
      r.Int("max_num_batched_tokens", s.max_num_batched_tokens, 0, kMaxTokens);
  s.chunk_tokens = r.Int("chunk_tokens", s.chunk_tokens, 1, kMaxTokens);
  s.reserve_full_isl = r.Bool("reserve_full_isl", s.reserve_full_isl);
  r.Finish();
  // A key the type does not read would change nothing (MakeScheduler, builder.cc);
  // one the file wrote for the type an override has since replaced is left behind, not
  // an error (--set scheduler.type=vllm on a sarathi scenario).
  const bool type_switched = r.Overridden("type");
  const auto unread = [&](const char* key, bool applies, const char* which) {
    if (r.Present(key) && !applies && (!type_switched || r.Overridden(key))) {
      r.Fail(key, fmt::format("the {} scheduler does not read it ({} only); leave it out",
                              kSchedulerTypes.Name(s.type), which));
    }
  };
  unread("chunk_tokens", s.type == SchedulerType::kSarathi, "sarathi");
  unread("max_num_batched_tokens", s.type != SchedulerType::kStaticBatching,
         "vllm, sarathi and vllm_v1");
  unread("reserve_full_isl", s.type == SchedulerType::kVllmV1, "vllm_v1");
}

}  // namespace

void ApplySchedulerWatermark(ScenarioConfig& c) {
  if (c.sources.watermark_set) return;
  const double watermark =
      c.scheduler.type == SchedulerType::kVllmV1 ? 0.0 : PagedKvConfig{}.watermark;
  c.kv_cache.paged.watermark = c.kv_cache.vattention.watermark = watermark;
}

namespace {

void DecodeKvCache(MapReader r, KvCacheConfig& k, ScenarioSources& sources) {
  k.type = r.Enum("type", k.type, kKvManagerTypes);
  k.dtype = DecodeDtype(r, "dtype", k.dtype);
  k.paged.block_tokens = r.Int("block_tokens", k.paged.block_tokens, 1, kMaxTokens);
  k.paged.prefix_caching = k.vattention.prefix_caching =
      r.Bool("prefix_caching", k.paged.prefix_caching);
  k.paged_kernel = r.Enum("paged_kernel", k.paged_kernel, kPagedKernels);
  const double watermark = r.Double("watermark", k.paged.watermark, 0, 0.99);
  k.paged.watermark = k.vattention.watermark = watermark;
  sources.watermark_set = r.Has("watermark");
  k.vattention.page_bytes = r.Bytes("page_bytes", k.vattention.page_bytes);
  sources.block_tokens_set = r.Has("block_tokens");
  sources.page_bytes_set = r.Has("page_bytes");
  if (sources.page_bytes_set) {
    if (!IsVAttentionPageSize(k.vattention.page_bytes)) {
      r.Fail("page_bytes", fmt::format("{} bytes is not a vAttention page size; valid: 64KiB, "
                                       "128KiB, 256KiB, 2MiB",
                                       k.vattention.page_bytes));
    }
  }
  k.vattention.overlap = r.Bool("overlap", k.vattention.overlap);
  k.vattention.deferred_reclaim = r.Bool("deferred_reclaim", k.vattention.deferred_reclaim);
  k.vattention.max_slots = r.Int("max_slots", 0, 0, kMaxSequences);
  k.static_kv.reserve = r.Enum("static_reserve", k.static_kv.reserve, kStaticReserves);
  {
    MapReader v = r.Child("vmm");
    // auto (nullopt): uvm below 2 MiB pages, stock otherwise; the rest of kvsim sees
    // only the resolved backend.
    sources.vmm_backend = v.Enum("backend", std::optional<VmmBackend>(), kVmmBackendSettings);
    k.vattention.backend = sources.vmm_backend.value_or(AutoVmmBackend(k.vattention.page_bytes));
    // One driver call takes microseconds; a second bounds it far above any measured
    // (and keeps calls x latency within int64 nanoseconds).
    constexpr double kMaxCallS = 1.0;
    k.vattention.map_latency = v.Seconds("map_s", k.vattention.map_latency, kMaxCallS);
    k.vattention.set_access_latency =
        v.Seconds("set_access_s", k.vattention.set_access_latency, kMaxCallS);
    k.vattention.unmap_latency = v.Seconds("unmap_s", k.vattention.unmap_latency, kMaxCallS);
    k.vattention.uvm_map_latency = v.Seconds("uvm_map_s", k.vattention.uvm_map_latency, kMaxCallS);
    k.vmm_set = {.map_s = v.Has("map_s"),
                 .set_access_s = v.Has("set_access_s"),
                 .unmap_s = v.Has("unmap_s")};
    // A stock page size is blamed on page_bytes; a uvm one on the backend chosen.
    if (const std::optional<VmmConfigError> e = CheckKvCache(k)) {
      if (e->key == "vmm.backend") v.Fail("backend", e->what);
      r.Fail(e->key, e->what);
    }
    v.Finish();
  }
  r.Finish();
}

std::vector<CompareEntry> DecodeCompare(const MapReader& parent, const YAML::Node& list) {
  std::vector<CompareEntry> entries;
  if (!list.IsDefined() || list.IsNull()) return entries;
  if (!list.IsSequence()) {
    throw InputError(parent.Where(list, "compare") + ": expected a list of {label, set}");
  }
  std::set<std::string> labels;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = fmt::format("compare[{}]", i);
    MapReader e(list[i], path, parent.context());
    CompareEntry entry;
    entry.label = e.String("label", "");
    if (entry.label.empty()) e.Fail("label", "required");
    // A label names a folder, a table column and a line of a report: printable text.
    const bool control = std::any_of(entry.label.begin(), entry.label.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    if (control || entry.label.find_first_of("/\\ ") != std::string::npos ||
        entry.label.starts_with(".") || entry.label.size() > 64) {
      e.Fail("label",
             "must be usable as a directory name: at most 64 bytes, no '/', '\\', spaces, "
             "control characters or leading '.'");
    }
    if (!labels.insert(entry.label).second)
      e.Fail("label", "duplicate label '" + entry.label + "'");
    MapReader set = e.Child("set");
    entry.overrides = set.Overrides();
    entry.overrides_where = e.Where(e.Value("set"), e.KeyPath("set"));
    for (const auto& [key, value] : entry.overrides) {
      if (key == "compare" || key.starts_with("compare.")) {
        set.Fail(key, "compare cannot nest");
      }
    }
    e.Finish();
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

std::vector<KvManagerType> KvCacheKeyReaders(std::string_view key) {
  const std::string_view top = key.substr(0, key.find('.'));
  if (top == "block_tokens" || top == "paged_kernel") return {KvManagerType::kPaged};
  if (top == "watermark") return {KvManagerType::kPaged, KvManagerType::kVAttention};
  if (top == "page_bytes" || top == "overlap" || top == "deferred_reclaim" || top == "max_slots" ||
      top == "vmm") {
    return {KvManagerType::kVAttention};
  }
  if (top == "static_reserve") return {KvManagerType::kStatic};
  return {KvManagerType::kStatic, KvManagerType::kPaged, KvManagerType::kVAttention};
}

std::vector<CompareEntry> DefaultCompareEntries(const ScenarioConfig& base) {
  const auto entry = [](std::string label, KvManagerType type) {
    CompareEntry e{std::move(label), {}, {}, {}};
    e.delta.kv_type = type;
    return e;
  };
  const KvCacheConfig& k = base.kv_cache;
  const ScenarioSources& src = base.sources;
  std::vector<CompareEntry> out;
  // Static reservation shares nothing (kv_cache.prefix_caching with it is an error),
  // so its column runs without a prefix cache whatever the base says.
  out.push_back(entry("static", KvManagerType::kStatic));
  out.back().delta.prefix_caching = false;
  // The block size the config wrote (vLLM's 16 when it wrote none).
  const int64_t block_tokens = src.block_tokens_set ? k.paged.block_tokens : 16;
  out.push_back(entry(block_tokens == 16 ? "paged" : fmt::format("paged{}", block_tokens),
                      KvManagerType::kPaged));
  out.back().delta.block_tokens = block_tokens;
  // 2 MiB and 64 KiB pages, and the page size the config wrote when it is neither.
  std::vector<int64_t> pages = {int64_t{2} << 20, int64_t{64} << 10};
  if (src.page_bytes_set &&
      std::find(pages.begin(), pages.end(), k.vattention.page_bytes) == pages.end()) {
    pages.insert(pages.begin() + 1, k.vattention.page_bytes);
  }
  for (const int64_t page_bytes : pages) {
    CompareEntry e =
        entry("vattention_" + PageSizeText(page_bytes, ""), KvManagerType::kVAttention);
    e.delta.page_bytes = page_bytes;
    // The backend the config wrote where it can map this page size, else auto: stock
    // for 2 MiB pages, uvm (vAttention's driver) below.
    VAttentionKvConfig v = k.vattention;
    v.page_bytes = page_bytes;
    v.backend = src.vmm_backend.value_or(AutoVmmBackend(page_bytes));
    e.delta.vmm_backend =
        src.vmm_backend && !CheckVmmBackend(v) ? src.vmm_backend : std::optional<VmmBackend>();
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

// Decodes a tree, all but timing.calibration (DecodeScenario applies it typed).
ScenarioConfig DecodeTree(const ConfigTree& tree, const std::string& default_models_dir,
                          WorkloadDecoding workload) {
  ScenarioConfig c;
  c.config_file = tree.origin();
  const std::string base = tree.base_dir();
  const DecodeContext ctx{c.config_file, tree.overridden(), &tree.override_origins()};
  MapReader r(tree.root(), "", ctx);
  {
    const YAML::Node list = tree.root()["compare"];
    c.sources.has_compare_entries = list.IsDefined() && list.IsSequence() && list.size() > 0;
  }
  c.seed = static_cast<uint64_t>(r.Int("seed", 0, 0));
  c.sources.base_dir = base;
  c.sources.models_dir = r.HasScalar("models_dir", "a directory path")
                             ? Resolve(base, r.String("models_dir", ""))
                             : default_models_dir;
  c.model_path = ResolveCard(r, "model", c.sources.models_dir, "llm", base);
  c.gpu_path = ResolveCard(r, "gpu", c.sources.models_dir, "gpu", base);
  DecodeDeployment(r.Child("deployment"), c.deployment);
  if (workload == WorkloadDecoding::kRead) {
    DecodeWorkload(r.Child("workload"), c.workload, c.sources);
  } else {
    r.Has("workload");  // replaced by the caller's delta
    c.sources.workload_unread = true;
  }
  c.workload.seed = c.seed;
  DecodeScheduler(r.Child("scheduler"), c.scheduler);
  DecodeKvCache(r.Child("kv_cache"), c.kv_cache, c.sources);
  ApplySchedulerWatermark(c);
  if (const std::optional<std::string> why = CheckKvCapacity(c)) {
    r.Child("deployment").Fail("kv_capacity_bytes", *why);
  }
  DecodeTiming(r.Child("timing"), c.timing, base, c.sources.has_compare_entries);
  {
    MapReader o = r.Child("output");
    c.output.requests_csv = o.Bool("requests_csv", c.output.requests_csv);
    c.output.timeseries_csv = o.Bool("timeseries_csv", c.output.timeseries_csv);
    c.output.timeseries_interval =
        o.Seconds("timeseries_interval_s", c.output.timeseries_interval, 1e6);
    o.Finish();
  }
  {
    MapReader m = r.Child("simulation");
    c.simulation.skip_ahead = m.Bool("skip_ahead", c.simulation.skip_ahead);
    m.Finish();
  }
  r.Has("compare");
  c.compare = DecodeCompare(r, r.Value("compare"));
  r.Finish();
  return c;
}

// Whether an override (--set, a compare entry) set `key_path` or a map above it.
bool OverriddenOrUnder(const ConfigTree& tree, const std::string& key_path) {
  for (std::string p = key_path;;) {
    if (tree.overridden().contains(p)) return true;
    const size_t dot = p.rfind('.');
    if (dot == std::string::npos) return false;
    p.resize(dot);
  }
}

// Reads the calibration timing.calibration names (`node`) into c.sources, with the
// calibration keys an override set and those the file sets itself.
void ReadCalibrationSource(const ConfigTree& tree, const YAML::Node& node, ScenarioConfig& c) {
  ScenarioSources& s = c.sources;
  // "file:line: timing.calibration", or naming the override that set it.
  const DecodeContext ctx{tree.origin(), tree.overridden(), &tree.override_origins()};
  s.calibration_where = MapReader(tree.root(), "", ctx).Where(node, "timing.calibration");
  if (!node.IsScalar()) {
    throw InputError(s.calibration_where + ": expected the path of a calibration.yaml");
  }
  auto cal = std::make_shared<Calibration>();
  try {
    *cal = LoadCalibration(Resolve(tree.base_dir(), node.as<std::string>()));
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", s.calibration_where, e.what()));
  }
  for (const FittableTerm& term : FittableTerms()) {
    if (OverriddenOrUnder(tree, term.key)) {
      s.calibration_overridden.insert(term.key);
      continue;
    }
    const YAML::Node existing = NodeAtPath(tree.root(), term.key);  // with its file position
    if (existing.IsDefined() && !existing.IsNull()) {
      s.calibration_in_file[term.key] =
          fmt::format("{}:{}", tree.origin(), existing.Mark().line + 1);
    }
  }
  s.calibration = std::move(cal);
  s.uncalibrated_timing = std::make_shared<const TimingConfig>(c.timing);
}

}  // namespace

ScenarioConfig DecodeScenario(const ConfigTree& tree, const std::string& default_models_dir,
                              WorkloadDecoding workload) {
  ScenarioConfig c = DecodeTree(tree, default_models_dir, workload);
  const YAML::Node node = NodeAtPath(tree.root(), "timing.calibration");
  if (node.IsDefined() && !node.IsNull()) {
    ReadCalibrationSource(tree, node, c);
    ApplyCalibrationTerms(c);
  }
  return c;
}

}  // namespace kvsim
