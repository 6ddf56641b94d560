// Strict decoding of scenario YAML into ScenarioConfig.
#include "sim/config/scenario_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <set>

#include "sim/core/check.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

// What every reader of one document shares: its file and the key paths that
// overrides set.
struct DecodeContext {
  const std::string& file;
  const std::set<std::string>& overridden;
};

// Reads one YAML mapping, remembering which keys were read, so that Finish() can
// name every key nobody asked for.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, const DecodeContext& ctx)
      : node_(node), path_(std::move(path)), ctx_(ctx) {
    if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
      throw InputError(Where(node_, path_) + ": expected a mapping");
    }
    if (IsMap()) {
      std::map<std::string, int> lines;
      for (const auto& kv : node_) {
        const std::string key = kv.first.as<std::string>();
        const int line = kv.first.Mark().line + 1;
        if (!lines.emplace(key, line).second) {
          throw InputError(Where(kv.first, KeyPath(key)) +
                           fmt::format(": duplicate key (first at line {})", lines[key]));
        }
      }
    }
  }

  bool IsMap() const { return node_.IsDefined() && node_.IsMap(); }

  std::string KeyPath(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  // "file:line: key.path" (line from the YAML node; overrides have none).
  // "file:line: key.path", or "file: key.path (set by an override)" for values
  // that --set or a compare entry put there (their nodes carry no file position).
  std::string Where(const YAML::Node& node, const std::string& key_path) const {
    for (std::string p = key_path;;) {  // the key and each enclosing map
      if (ctx_.overridden.contains(p)) {
        return fmt::format("{}: {} (set by an override)", ctx_.file, key_path);
      }
      const size_t dot = p.rfind('.');
      if (dot == std::string::npos) break;
      p.resize(dot);
    }
    const int line = node.IsDefined() ? node.Mark().line : -1;  // -1: no source position
    if (line >= 0) return fmt::format("{}:{}: {}", ctx_.file, line + 1, key_path);
    return fmt::format("{}: {}", ctx_.file, key_path);
  }

  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw InputError(Where(Value(key), KeyPath(key)) + ": " + what);
  }

  // The value under `key`, or an undefined node. Looks up through a const node:
  // yaml-cpp's non-const operator[] would insert the key.
  YAML::Node Value(const std::string& key) const {
    if (!node_.IsDefined() || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& map = node_;
    return map[key];
  }

  bool Has(const std::string& key) {
    known_.insert(key);
    const YAML::Node v = Value(key);
    return v.IsDefined() && !v.IsNull();
  }

  int64_t Int(const std::string& key, int64_t def, int64_t min_value) {
    if (!Has(key)) return def;
    int64_t v = 0;
    try {
      v = Value(key).as<int64_t>();
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("expected an integer, got '{}'", Scalar(key)));
    }
    if (v < min_value) Fail(key, fmt::format("must be >= {}, got {}", min_value, v));
    return v;
  }

  double Double(const std::string& key, double def, double min_value, double max_value) {
    if (!Has(key)) return def;
    double v = 0;
    try {
      v = Value(key).as<double>();
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("expected a number, got '{}'", Scalar(key)));
    }
    if (!(v >= min_value && v <= max_value)) {
      Fail(key, fmt::format("must be in [{}, {}], got {}", min_value, max_value, v));
    }
    return v;
  }

  bool Bool(const std::string& key, bool def) {
    if (!Has(key)) return def;
    try {
      return Value(key).as<bool>();
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("expected true or false, got '{}'", Scalar(key)));
    }
  }

  std::string String(const std::string& key, const std::string& def) {
    if (!Has(key)) return def;
    if (!Value(key).IsScalar()) Fail(key, "expected a string");
    return Value(key).as<std::string>();
  }

  int64_t Bytes(const std::string& key, int64_t def) {
    if (!Has(key)) return def;
    if (!Value(key).IsScalar()) Fail(key, "expected a byte size");
    const YAML::Node v = Value(key);
    return ParseByteSize(v.as<std::string>(), Where(v, KeyPath(key)));
  }

  Nanos Seconds(const std::string& key, Nanos def) {
    if (!Has(key)) return def;
    return SecondsToNanos(Double(key, 0, 0, 1e6));
  }

  template <typename E>
  E Enum(const std::string& key, E def, std::initializer_list<std::pair<const char*, E>> names) {
    if (!Has(key)) return def;
    const std::string s = String(key, "");
    std::string valid;
    for (const auto& [name, value] : names) {
      if (s == name) return value;
      valid += valid.empty() ? name : std::string(", ") + name;
    }
    Fail(key, fmt::format("unknown value '{}'; valid: {}", s, valid));
  }

  MapReader Child(const std::string& key) {
    known_.insert(key);
    return MapReader(Value(key), KeyPath(key), ctx_);
  }

  // Throws on the first key that was never read, listing the valid ones.
  void Finish() const {
    if (!IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (known_.contains(key)) continue;
      std::string valid;
      for (const std::string& k : known_) valid += valid.empty() ? k : ", " + k;
      throw InputError(Where(kv.first, KeyPath(key)) + ": unknown key; valid keys here: " + valid);
    }
  }

  const YAML::Node& node() const { return node_; }
  const DecodeContext& context() const { return ctx_; }

 private:
  std::string Scalar(const std::string& key) const {
    const YAML::Node v = Value(key);
    return v.IsScalar() ? v.Scalar() : "a non-scalar";
  }

  YAML::Node node_;
  std::string path_;
  const DecodeContext& ctx_;
  std::set<std::string> known_;
};

// An absolute path for `path` given relative to `base_dir` (the config's directory).
std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return fs::absolute(fs::path(base_dir) / path).lexically_normal().string();
}

// A card given as a name ("Llama-3-8B") or as a path ("cards/my_model.yaml").
std::string ResolveCard(MapReader& r, const std::string& key, const std::string& models_dir,
                        const std::string& kind, const std::string& base_dir) {
  if (!r.Has(key)) r.Fail(key, "required");
  const std::string value = r.String(key, "");
  const bool is_path = value.find('/') != std::string::npos || value.ends_with(".yaml");
  const std::string path = is_path ? Resolve(base_dir, value)
                                   : (fs::path(models_dir) / kind / (value + ".yaml")).string();
  if (!fs::exists(path)) {
    std::string available;
    if (!is_path && fs::is_directory(fs::path(models_dir) / kind)) {
      std::set<std::string> names;
      for (const auto& e : fs::directory_iterator(fs::path(models_dir) / kind)) {
        if (e.path().extension() == ".yaml") names.insert(e.path().stem().string());
      }
      for (const std::string& n : names) available += available.empty() ? n : ", " + n;
    }
    r.Fail(key, available.empty()
                    ? fmt::format("card '{}' not found ({})", value, path)
                    : fmt::format("unknown {} card '{}'; available: {}", kind, value, available));
  }
  return path;
}

void DecodeDeployment(MapReader r, DeploymentConfig& d) {
  d.tensor_parallel = r.Int("tensor_parallel", d.tensor_parallel, 1);
  d.replicas = r.Int("replicas", d.replicas, 1);
  d.router = r.Enum("router", d.router,
                    {{"round_robin", RouterType::kRoundRobin},
                     {"least_outstanding", RouterType::kLeastOutstanding}});
  d.gpu_memory_utilization =
      r.Double("gpu_memory_utilization", d.gpu_memory_utilization, 0.01, 1.0);
  d.activation_reserve_bytes = r.Bytes("activation_reserve_bytes", d.activation_reserve_bytes);
  d.framework_reserve_bytes = r.Bytes("framework_reserve_bytes", d.framework_reserve_bytes);
  d.kv_capacity_bytes = r.Bytes("kv_capacity_bytes", d.kv_capacity_bytes);
  d.max_model_len = r.Int("max_model_len", d.max_model_len, 0);
  r.Finish();
}

void DecodeWorkload(MapReader r, WorkloadConfig& w, const std::string& base_dir) {
  w.trace_path = Resolve(base_dir, r.String("trace", ""));
  w.trace_format = ParseTraceFormat(r.String("format", "auto"), r.KeyPath("format"));
  w.max_requests = r.Int("max_requests", w.max_requests, 0);
  {
    MapReader a = r.Child("arrival");
    w.arrival = a.Enum("process", w.arrival,
                       {{"trace", ArrivalProcess::kTrace},
                        {"poisson", ArrivalProcess::kPoisson},
                        {"gamma", ArrivalProcess::kGamma}});
    w.rate_qps = a.Double("rate_qps", w.rate_qps, 0, 1e9);
    w.cv = a.Double("cv", w.cv, 0, 1e6);
    a.Finish();
  }
  {
    MapReader l = r.Child("lengths");
    w.lengths = l.Enum("source", w.lengths,
                       {{"trace", LengthSource::kTrace},
                        {"fixed", LengthSource::kFixed},
                        {"uniform", LengthSource::kUniform},
                        {"resample", LengthSource::kResample}});
    w.fixed_prompt_tokens = l.Int("prompt_tokens", w.fixed_prompt_tokens, 0);
    w.fixed_output_tokens = l.Int("output_tokens", w.fixed_output_tokens, 0);
    w.min_prompt_tokens = l.Int("min_prompt_tokens", w.min_prompt_tokens, 0);
    w.max_prompt_tokens = l.Int("max_prompt_tokens", w.max_prompt_tokens, 0);
    w.min_output_tokens = l.Int("min_output_tokens", w.min_output_tokens, 0);
    w.max_output_tokens = l.Int("max_output_tokens", w.max_output_tokens, 0);
    l.Finish();
  }
  r.Finish();
  try {
    ValidateWorkloadConfig(w, "workload");
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", r.context().file, e.what()));
  }
}

void DecodeScheduler(MapReader r, SchedulerConfig& s) {
  s.type = r.Enum("type", s.type,
                  {{"vllm", SchedulerType::kVllm},
                   {"sarathi", SchedulerType::kSarathi},
                   {"static_batching", SchedulerType::kStaticBatching}});
  s.max_num_seqs = r.Int("max_num_seqs", s.max_num_seqs, 1);
  s.max_num_batched_tokens = r.Int("max_num_batched_tokens", s.max_num_batched_tokens, 0);
  s.chunk_tokens = r.Int("chunk_tokens", s.chunk_tokens, 1);
  r.Finish();
}

void DecodeKvCache(MapReader r, KvCacheConfig& k) {
  k.type = r.Enum("type", k.type,
                  {{"static", KvManagerType::kStatic},
                   {"paged", KvManagerType::kPaged},
                   {"vattention", KvManagerType::kVAttention}});
  k.paged.block_tokens = r.Int("block_tokens", k.paged.block_tokens, 1);
  const double watermark = r.Double("watermark", k.paged.watermark, 0, 0.99);
  k.paged.watermark = k.vattention.watermark = watermark;
  k.vattention.page_bytes = r.Bytes("page_bytes", k.vattention.page_bytes);
  if (r.Has("page_bytes")) {
    constexpr int64_t kAllowed[] = {64 << 10, 128 << 10, 256 << 10, 2 << 20};
    if (std::find(std::begin(kAllowed), std::end(kAllowed), k.vattention.page_bytes) ==
        std::end(kAllowed)) {
      r.Fail("page_bytes", fmt::format("{} bytes is not a vAttention page size; valid: 64KiB, "
                                       "128KiB, 256KiB, 2MiB",
                                       k.vattention.page_bytes));
    }
  }
  k.vattention.overlap = r.Bool("overlap", k.vattention.overlap);
  k.vattention.deferred_reclaim = r.Bool("deferred_reclaim", k.vattention.deferred_reclaim);
  k.vattention.max_slots = r.Int("max_slots", 0, 0);
  k.static_kv.reserve = r.Enum("static_reserve", k.static_kv.reserve,
                               {{"max_model_len", StaticKvConfig::Reserve::kMaxModelLen},
                                {"request_max", StaticKvConfig::Reserve::kRequestMax}});
  {
    MapReader v = r.Child("vmm");
    k.vattention.map_latency = v.Seconds("map_s", k.vattention.map_latency);
    k.vattention.set_access_latency = v.Seconds("set_access_s", k.vattention.set_access_latency);
    k.vattention.unmap_latency = v.Seconds("unmap_s", k.vattention.unmap_latency);
    k.vmm_set = {.map_s = v.Has("map_s"),
                 .set_access_s = v.Has("set_access_s"),
                 .unmap_s = v.Has("unmap_s")};
    v.Finish();
  }
  r.Finish();
}

void DecodeTiming(MapReader r, TimingConfig& t, const std::string& base_dir) {
  t.type = r.Enum("type", t.type,
                  {{"roofline", TimingType::kRoofline},
                   {"fixed", TimingType::kFixed},
                   {"profiled", TimingType::kProfiled}});
  t.profile_path = Resolve(base_dir, r.String("profile", ""));
  if (t.type == TimingType::kProfiled && t.profile_path.empty()) {
    r.Fail("profile", "required when timing.type is profiled (a kvprobe profile.txt)");
  }
  {
    MapReader f = r.Child("roofline");
    RooflineConfig& c = t.roofline;
    c.gemm_efficiency = f.Double("gemm_efficiency", c.gemm_efficiency, 1e-3, 1);
    c.memory_efficiency = f.Double("memory_efficiency", c.memory_efficiency, 1e-3, 1);
    c.attention_prefill_efficiency =
        f.Double("attention_prefill_efficiency", c.attention_prefill_efficiency, 1e-3, 1);
    c.attention_decode_efficiency =
        f.Double("attention_decode_efficiency", c.attention_decode_efficiency, 1e-3, 1);
    c.paged_prefill_slowdown = f.Double("paged_prefill_slowdown", c.paged_prefill_slowdown, 1, 100);
    c.paged_decode_slowdown = f.Double("paged_decode_slowdown", c.paged_decode_slowdown, 1, 100);
    c.block_table_entry_s = f.Double("block_table_entry_s", c.block_table_entry_s, 0, 1);
    c.allreduce_latency_s = f.Double("allreduce_latency_s", c.allreduce_latency_s, 0, 1);
    c.cpu_overhead_s = f.Double("cpu_overhead_s", c.cpu_overhead_s, 0, 10);
    c.cpu_per_seq_s = f.Double("cpu_per_seq_s", c.cpu_per_seq_s, 0, 1);
    f.Finish();
  }
  {
    MapReader f = r.Child("fixed");
    FixedTimeConfig& c = t.fixed;
    c.per_iteration = f.Seconds("per_iteration_s", c.per_iteration);
    c.per_prefill_token = f.Seconds("per_prefill_token_s", c.per_prefill_token);
    c.per_decode_token = f.Seconds("per_decode_token_s", c.per_decode_token);
    f.Finish();
  }
  {
    MapReader f = r.Child("profiled");
    ProfiledConfig& c = t.profiled;
    c.prefill_attention = f.Enum("prefill_attention", c.prefill_attention,
                                 {{"roofline", ProfiledConfig::PrefillAttention::kRoofline},
                                  {"measured", ProfiledConfig::PrefillAttention::kMeasured}});
    c.attention_prefill_efficiency =
        f.Double("attention_prefill_efficiency", c.attention_prefill_efficiency, 1e-3, 1);
    c.block_table_entry_s = f.Double("block_table_entry_s", c.block_table_entry_s, 0, 1);
    c.allreduce_latency_s = f.Double("allreduce_latency_s", c.allreduce_latency_s, 0, 1);
    c.cpu_overhead_s = f.Double("cpu_overhead_s", c.cpu_overhead_s, 0, 10);
    c.cpu_per_seq_s = f.Double("cpu_per_seq_s", c.cpu_per_seq_s, 0, 1);
    f.Finish();
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
    if (entry.label.find_first_of("/\\ ") != std::string::npos || entry.label.starts_with(".")) {
      e.Fail("label", "must be usable as a directory name (no '/', '\\', spaces or leading '.')");
    }
    if (!labels.insert(entry.label).second)
      e.Fail("label", "duplicate label '" + entry.label + "'");
    MapReader set = e.Child("set");
    if (set.IsMap()) {
      for (const auto& kv : set.node()) {
        const std::string key = kv.first.as<std::string>();
        if (key == "compare" || key.starts_with("compare.")) {
          throw InputError(set.Where(kv.first, set.KeyPath(key)) + ": compare cannot nest");
        }
        YAML::Emitter out;
        out << YAML::Flow << kv.second;
        entry.overrides.emplace_back(key, out.c_str());
        set.Has(key);
      }
    }
    e.Finish();
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

std::vector<CompareEntry> DefaultCompareEntries() {
  return {
      {"static", {{"kv_cache.type", "static"}}},
      {"paged", {{"kv_cache.type", "paged"}, {"kv_cache.block_tokens", "16"}}},
      {"vattention_2MiB", {{"kv_cache.type", "vattention"}, {"kv_cache.page_bytes", "2MiB"}}},
      {"vattention_64KiB", {{"kv_cache.type", "vattention"}, {"kv_cache.page_bytes", "64KiB"}}},
  };
}

ScenarioConfig DecodeScenario(const ConfigTree& tree, const std::string& default_models_dir) {
  ScenarioConfig c;
  c.config_file = tree.origin();
  const std::string base = tree.base_dir();
  const DecodeContext ctx{c.config_file, tree.overridden()};
  MapReader r(tree.root(), "", ctx);
  c.seed = static_cast<uint64_t>(r.Int("seed", 0, 0));
  const std::string models_dir =
      r.Has("models_dir") ? Resolve(base, r.String("models_dir", "")) : default_models_dir;
  c.model_path = ResolveCard(r, "model", models_dir, "llm", base);
  c.gpu_path = ResolveCard(r, "gpu", models_dir, "gpu", base);
  DecodeDeployment(r.Child("deployment"), c.deployment);
  DecodeWorkload(r.Child("workload"), c.workload, base);
  c.workload.seed = c.seed;
  DecodeScheduler(r.Child("scheduler"), c.scheduler);
  DecodeKvCache(r.Child("kv_cache"), c.kv_cache);
  DecodeTiming(r.Child("timing"), c.timing, base);
  {
    MapReader o = r.Child("output");
    c.output.requests_csv = o.Bool("requests_csv", c.output.requests_csv);
    c.output.timeseries_csv = o.Bool("timeseries_csv", c.output.timeseries_csv);
    o.Finish();
  }
  r.Has("compare");
  c.compare = DecodeCompare(r, r.Value("compare"));
  r.Finish();
  return c;
}

}  // namespace kvsim
