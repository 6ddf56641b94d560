// GpuSpec: strict loading of GPU cards (models/gpu/*.yaml).
#include "sim/hardware/gpu_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sim/core/check.h"
#include "sim/hardware/card_reader.h"

namespace kvsim {
namespace {

// The card's `efficiency` mapping: fractions in (0, 1], latencies >= 0 seconds, a
// GPU count (allreduce_fit_max_gpus) a whole number >= 2.
GpuSpec::Efficiencies ReadEfficiencies(const YAML::Node& node, const std::string& path) {
  const auto fail = [&](const YAML::Node& at, const std::string& key, const std::string& what) {
    throw InputError(
        fmt::format("{}:{}: key 'efficiency.{}': {}", path, at.Mark().line + 1, key, what));
  };
  if (!node.IsMap()) {
    throw InputError(
        fmt::format("{}:{}: key 'efficiency': expected a mapping", path, node.Mark().line + 1));
  }
  GpuSpec::Efficiencies e;
  enum Kind { kFraction, kSeconds, kGpus };
  const std::map<std::string, std::pair<double*, Kind>> fields = {
      {"gemm", {&e.gemm, kFraction}},
      {"memory", {&e.memory, kFraction}},
      {"attention_prefill", {&e.attention_prefill, kFraction}},
      {"attention_decode", {&e.attention_decode, kFraction}},
      {"allreduce_bus_efficiency", {&e.allreduce_bus_efficiency, kFraction}},
      {"allreduce_base_latency_s", {&e.allreduce_base_latency_s, kSeconds}},
      {"allreduce_hop_latency_s", {&e.allreduce_hop_latency_s, kSeconds}},
      {"allreduce_fit_max_gpus", {&e.allreduce_fit_max_gpus, kGpus}}};
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) fail(kv.first, "?", "expected a key name");
    const std::string key = kv.first.Scalar();
    const auto it = fields.find(key);
    if (it == fields.end()) {
      std::string valid;
      for (const auto& [name, unused] : fields) valid += (valid.empty() ? "" : ", ") + name;
      fail(kv.first, key, "unknown key; valid: " + valid);
    }
    double v = 0;
    if (!kv.second.IsScalar()) fail(kv.second, key, "expected a number");
    try {
      v = kv.second.as<double>();
    } catch (const YAML::Exception&) {
      fail(kv.second, key, "expected a number, got '" + kv.second.Scalar() + "'");
    }
    const Kind kind = it->second.second;
    const bool ok = kind == kFraction  ? v > 0 && v <= 1
                    : kind == kSeconds ? v >= 0 && v < 1
                                       : v >= 2 && v <= 576 && v == std::floor(v);
    if (!std::isfinite(v) || !ok) {
      fail(kv.second, key,
           kind == kFraction ? fmt::format("expected a fraction in (0, 1], got {}", v)
           : kind == kSeconds
               ? fmt::format("expected seconds in [0, 1), got {}", v)
               : fmt::format("expected a whole number of GPUs in [2, 576], got {}", v));
    }
    *it->second.first = v;
  }
  // The latency is base + 2 (n-1) hop: one without the other is no latency.
  if ((e.allreduce_base_latency_s >= 0) != (e.allreduce_hop_latency_s >= 0)) {
    throw InputError(fmt::format(
        "{}:{}: key 'efficiency': allreduce_base_latency_s and allreduce_hop_latency_s go "
        "together (latency on n GPUs = base + 2 (n-1) hop); give both or neither",
        path, node.Mark().line + 1));
  }
  return e;
}

}  // namespace

GpuSpec LoadGpuSpec(const std::string& path) {
  static constexpr std::array<std::string_view, 14> kKeys = {"name",
                                                             "memory_bytes",
                                                             "hbm_bandwidth_bytes_per_s",
                                                             "bf16_flops_per_s",
                                                             "link_bandwidth_bytes_per_s",
                                                             "price_per_hour",
                                                             "device_names",
                                                             "fp32_flops_per_s",
                                                             "fp8_flops_per_s",
                                                             "efficiency",
                                                             "host_cpu",
                                                             "host_cpu_speed",
                                                             "gpus_per_host",
                                                             "source"};
  // Keys of earlier cards, refused so that a figure nothing reads is not kept as if
  // it mattered.
  static constexpr std::array<RemovedCardKey, 1> kRemoved = {
      {{"host_link_bandwidth_bytes_per_s",
        "no simulator model uses the GPU-host link bandwidth; delete the line (GPU cards "
        "no longer have it)"}}};
  const CardReader card(path, kKeys, kRemoved);
  GpuSpec g;
  g.name = card.String("name");
  // Rates bounded to what a GPU can be: a card of 1e-3 FLOP/s would make one iteration
  // outlast what kvsim simulates.
  // Sizes and rates may carry units ("80GiB", "3.35 TB/s", "989.4 TFLOPS").
  // 1 GiB to 16 TiB: a figure outside it is a slip of unit ("80" for 80 GB).
  g.memory_bytes = card.ByteSize("memory_bytes");
  if (g.memory_bytes < (int64_t{1} << 30) || g.memory_bytes > (int64_t{1} << 44)) {
    throw InputError(fmt::format(
        "{}:{}: key 'memory_bytes': expected 1 GiB to 16 TiB (e.g. 80GB, 80GiB or 85017493504), "
        "got '{}'",
        path, card.LineOfKey("memory_bytes"), card.Text("memory_bytes")));
  }
  g.hbm_bandwidth_bytes_per_s =
      card.QuantityIn("hbm_bandwidth_bytes_per_s", Quantity::kBytesPerSecond, 1e9, 1e15);
  g.bf16_flops_per_s = card.QuantityIn("bf16_flops_per_s", Quantity::kFlopsPerSecond, 1e11, 1e18);
  g.link_bandwidth_bytes_per_s =
      card.QuantityIn("link_bandwidth_bytes_per_s", Quantity::kBytesPerSecond, 1e6, 1e15);
  // Zero is allowed: hardware that is already paid for.
  g.price_per_hour = card.PositiveDouble("price_per_hour", /*allow_zero=*/true);
  if (card.Has("device_names")) g.device_names = card.StringList("device_names");
  if (card.Has("fp8_flops_per_s")) {
    g.fp8_flops_per_s = card.QuantityIn("fp8_flops_per_s", Quantity::kFlopsPerSecond, 1e11, 1e18);
    // FP8 tensor cores run at least the BF16 rate (Hopper, Ada, Blackwell: twice it);
    // a lower figure is a slip of the pen (a card without FP8 leaves the key out).
    if (g.fp8_flops_per_s < g.bf16_flops_per_s) {
      throw InputError(fmt::format(
          "{}:{}: key 'fp8_flops_per_s': {:g} is below bf16_flops_per_s ({:g}); FP8 tensor cores "
          "run at least the BF16 rate (a GPU without FP8 leaves the key out)",
          path, card.LineOfKey("fp8_flops_per_s"), g.fp8_flops_per_s, g.bf16_flops_per_s));
    }
  }
  if (card.Has("fp32_flops_per_s")) {
    g.fp32_flops_per_s = card.QuantityIn("fp32_flops_per_s", Quantity::kFlopsPerSecond, 1e9, 1e18);
  }
  if (card.Has("efficiency")) g.efficiency = ReadEfficiencies(card.Node("efficiency"), path);
  if (card.Has("host_cpu") != card.Has("host_cpu_speed")) {
    const char* given = card.Has("host_cpu") ? "host_cpu" : "host_cpu_speed";
    throw InputError(fmt::format(
        "{}:{}: key '{}': host_cpu and host_cpu_speed go together (the host CPU and its "
        "single-thread speed relative to a Xeon Platinum 8480C core)",
        path, card.LineOfKey(given), given));
  }
  if (card.Has("host_cpu")) {
    g.host_cpu = card.String("host_cpu");
    g.host_cpu_speed = card.DoubleIn("host_cpu_speed", 0.05, 10, "relative single-thread speed");
  }
  // Up to 576: the largest NVLink domain NVIDIA names (GB200 NVL576).
  if (card.Has("gpus_per_host")) g.gpus_per_host = card.PositiveInt("gpus_per_host");
  if (g.gpus_per_host > 576) {
    throw InputError(fmt::format("{}:{}: key 'gpus_per_host': expected at most 576, got '{}'", path,
                                 card.LineOfKey("gpus_per_host"), card.Text("gpus_per_host")));
  }
  card.String("source");  // required for provenance; not used by the simulator
  return g;
}

}  // namespace kvsim
