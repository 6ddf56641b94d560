// Decoding of a scenario's `timing` section (decode_timing.h).
#include "sim/config/decode_timing.h"

#include <fmt/format.h>

#include <map>

#include "sim/config/scenario_resolve.h"
#include "sim/timing/cost_terms.h"

namespace kvsim {
namespace {

// Keys of earlier versions and where their terms live now: refused with any value,
// none included.
void RefuseMovedTimingKeys(MapReader& r, const std::string& child) {
  static const std::map<std::string, std::string> kMoved = {
      {"cpu_overhead_s", "timing.engine.per_iteration_s"},
      {"cpu_per_seq_s", "timing.engine.per_seq_s"},
      {"block_table_entry_s", "timing.engine.block_table_entry_s"},
      {"allreduce_latency_s", "timing.allreduce.latency_s"},
      {"paged_decode_slowdown", "kv_cache.paged_kernel"},
      {"paged_prefill_slowdown", "kv_cache.paged_kernel"}};
  for (const auto& [old_key, now] : kMoved) {
    if (r.Present(old_key)) {
      r.Fail(old_key, fmt::format("moved: one set of cost terms now serves every timing model; "
                                  "use {} (timing.{} no longer has it)",
                                  now, child));
    }
  }
}

void DecodeEngine(MapReader e, EngineConfig& c) {
  const EngineConfig::Preset preset = e.Enum("preset", c.preset, kEnginePresets);
  c = EnginePresetDefaults(preset);
  c.per_iteration_s = e.Double("per_iteration_s", c.per_iteration_s, 0, 10);
  c.per_seq_s = e.Double("per_seq_s", c.per_seq_s, 0, 1);
  c.per_prefill_token_s = e.Double("per_prefill_token_s", c.per_prefill_token_s, 0, 1);
  c.request_arrival_s = e.Double("request_arrival_s", c.request_arrival_s, 0, 100);
  c.request_finish_s = e.Double("request_finish_s", c.request_finish_s, 0, 100);
  c.block_table_entry_s = e.Double("block_table_entry_s", c.block_table_entry_s, 0, 1);
  c.cuda_graphs = e.Bool("cuda_graphs", c.cuda_graphs);
  c.launch_per_layer_s = e.Double("launch_per_layer_s", c.launch_per_layer_s, 0, 1);
  c.kernel_gap_s = e.Double("kernel_gap_s", c.kernel_gap_s, 0, 1);
  c.kernels_per_layer = e.Int("kernels_per_layer", c.kernels_per_layer, 0, 1000);
  if (c.kernels_per_layer > 0 && c.kernels_per_layer < CostTerms::kKernelsPerLayer) {
    e.Fail("kernels_per_layer",
           fmt::format("must be 0 (a fused engine's {0}) or at least {0}, got {1}",
                       CostTerms::kKernelsPerLayer, c.kernels_per_layer));
  }
  c.fused_kernels = e.Bool("fused_kernels", c.fused_kernels);
  e.Finish();
  // Every key but the preset overrides a term (Finish refused the unknown ones).
  if (!e.IsMap()) return;
  for (const auto& kv : e.node()) {
    const std::string key = kv.first.as<std::string>();
    if (key != "preset") c.configured.emplace_back(key, kv.second.Scalar());
  }
}

// Keys the timing model does not read would change nothing: the fixed model takes its
// costs from timing.fixed and of the engine only the per-request delays, and the other
// models never read timing.fixed (engine.preset stays: it names the engine a
// calibration must match). Errors, but for keys the file wrote for a type an
// override has since replaced (left behind, as scheduler keys are). timing.profile is
// kept under roofline for `--set timing.type=profiled`.
void RefuseUnreadTimingKeys(MapReader& r, const TimingConfig& t) {
  const bool switched = r.Overridden("type");
  const auto refuse = [&](MapReader& m, const std::string& key, const std::string& what) {
    if (m.Present(key) && (!switched || m.Overridden(key))) m.Fail(key, what);
  };
  if (t.type != TimingType::kFixed) {
    refuse(r, "fixed",
           fmt::format("the {} timing model does not read it (fixed only); leave it out",
                       kTimingTypes.Name(t.type)));
    return;
  }
  for (const char* block : {"roofline", "profiled", "allreduce", "profile"}) {
    refuse(r, block,
           "the fixed timing model does not read it (its costs are timing.fixed's); leave it out");
  }
  // Every engine key DecodeEngine read (it refused unknown ones) but the preset and the
  // per-request delays.
  MapReader e = r.Child("engine");
  if (!e.IsMap()) return;
  for (const auto& kv : e.node()) {
    const std::string key = kv.first.as<std::string>();
    if (key == "preset" || key == "request_arrival_s" || key == "request_finish_s") continue;
    refuse(e, key,
           "the fixed timing model does not read it: its costs are timing.fixed's "
           "(per_iteration_s, per_prefill_token_s, per_decode_token_s), and of the engine it "
           "takes only request_arrival_s and request_finish_s");
  }
}

}  // namespace

void DecodeTiming(MapReader r, TimingConfig& t, const std::string& base_dir, bool for_entries) {
  t.type = r.Enum("type", t.type, kTimingTypes);
  t.profile_path = Resolve(base_dir, r.String("profile", ""));
  // Applied by DecodeScenario after decoding; a null one is refused here, by its line.
  r.HasScalar("calibration", "the path of a calibration.yaml");
  if (t.type == TimingType::kProfiled && t.profile_path.empty()) {
    r.Fail("profile", "required when timing.type is profiled (a kvprobe profile.txt)");
  }
  DecodeEngine(r.Child("engine"), t.engine);
  {
    MapReader a = r.Child("allreduce");
    t.allreduce.latency_s = a.Double("latency_s", t.allreduce.latency_s, 0, 1);
    t.allreduce.bus_efficiency = a.Double("bus_efficiency", t.allreduce.bus_efficiency, 1e-3, 1);
    a.Finish();
  }
  {
    MapReader f = r.Child("roofline");
    RefuseMovedTimingKeys(f, "roofline");
    RooflineConfig& c = t.roofline;
    c.gemm_efficiency = f.Double("gemm_efficiency", c.gemm_efficiency, 1e-3, 1);
    c.memory_efficiency = f.Double("memory_efficiency", c.memory_efficiency, 1e-3, 1);
    c.attention_prefill_efficiency =
        f.Double("attention_prefill_efficiency", c.attention_prefill_efficiency, 1e-3, 1);
    c.attention_decode_efficiency =
        f.Double("attention_decode_efficiency", c.attention_decode_efficiency, 1e-3, 1);
    f.Finish();
  }
  {
    MapReader f = r.Child("fixed");
    FixedTimeConfig& c = t.fixed;
    c.per_iteration = f.Seconds("per_iteration_s", c.per_iteration, 60);
    c.per_prefill_token = f.Seconds("per_prefill_token_s", c.per_prefill_token, 1);
    c.per_decode_token = f.Seconds("per_decode_token_s", c.per_decode_token, 1);
    f.Finish();
  }
  {
    MapReader f = r.Child("profiled");
    RefuseMovedTimingKeys(f, "profiled");
    ProfiledConfig& c = t.profiled;
    c.prefill_attention = f.Enum("prefill_attention", c.prefill_attention, kPrefillAttentions);
    c.attention_prefill_efficiency =
        f.Double("attention_prefill_efficiency", c.attention_prefill_efficiency, 1e-3, 1);
    c.memory_efficiency = f.Double("memory_efficiency", c.memory_efficiency, 1e-3, 1);
    f.Finish();
  }
  r.Finish();
  if (!for_entries) RefuseUnreadTimingKeys(r, t);
}

}  // namespace kvsim
