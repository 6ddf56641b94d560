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

GpuSpec LoadGpuSpec(const std::string& path) {
  static constexpr std::array<std::string_view, 9> kKeys = {"name",
                                                            "memory_bytes",
                                                            "hbm_bandwidth_bytes_per_s",
                                                            "bf16_flops_per_s",
                                                            "link_bandwidth_bytes_per_s",
                                                            "host_link_bandwidth_bytes_per_s",
                                                            "price_per_hour",
                                                            "device_names",
                                                            "source"};
  const CardReader card(path, kKeys);
  GpuSpec g;
  g.name = card.String("name");
  g.memory_bytes = card.PositiveInt("memory_bytes");
  g.hbm_bandwidth_bytes_per_s = card.PositiveDouble("hbm_bandwidth_bytes_per_s");
  g.bf16_flops_per_s = card.PositiveDouble("bf16_flops_per_s");
  g.link_bandwidth_bytes_per_s = card.PositiveDouble("link_bandwidth_bytes_per_s");
  g.host_link_bandwidth_bytes_per_s = card.PositiveDouble("host_link_bandwidth_bytes_per_s");
  // Zero is allowed: hardware that is already paid for.
  g.price_per_hour = card.PositiveDouble("price_per_hour", /*allow_zero=*/true);
  if (card.Has("device_names")) g.device_names = card.StringList("device_names");
  card.String("source");  // required for provenance; not used by the simulator
  return g;
}

}  // namespace kvsim
