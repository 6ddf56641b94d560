#include "sim/core/units.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include "sim/core/check.h"

namespace kvsim {
namespace {

using Unit = std::pair<std::string_view, double>;

constexpr std::array<Unit, 10> kByteUnits = {{{"B", 1.0},
                                              {"KiB", 1024.0},
                                              {"MiB", 1048576.0},
                                              {"GiB", 1073741824.0},
                                              {"TiB", 1099511627776.0},
                                              {"KB", 1e3},
                                              {"MB", 1e6},
                                              {"GB", 1e9},
                                              {"TB", 1e12},
                                              {"PB", 1e15}}};

constexpr std::array<Unit, 6> kFlopPrefixes = {
    {{"", 1.0}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}}};

// The scale of `unit` for `kind`; nullopt when it is not one of the kind's units.
std::optional<double> UnitScale(std::string_view unit, Quantity kind) {
  if (unit.empty()) return 1.0;
  switch (kind) {
    case Quantity::kBytes:
      for (const auto& [name, scale] : kByteUnits) {
        if (unit == name) return scale;
      }
      return std::nullopt;
    case Quantity::kBytesPerSecond:
      if (!unit.ends_with("/s")) return std::nullopt;
      unit.remove_suffix(2);
      for (const auto& [name, scale] : kByteUnits) {
        if (unit == name) return scale;
      }
      return std::nullopt;
    case Quantity::kFlopsPerSecond:
      for (std::string_view suffix : {"FLOPS", "FLOP/s"}) {
        if (!unit.ends_with(suffix)) continue;
        const std::string_view prefix = unit.substr(0, unit.size() - suffix.size());
        for (const auto& [name, scale] : kFlopPrefixes) {
          if (prefix == name) return scale;
        }
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> ParseQuantity(std::string_view text, Quantity kind) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  const std::optional<double> scale = UnitScale(unit, kind);
  if (!scale) return std::nullopt;
  const double result = value * *scale;
  if (!std::isfinite(result) || result < 0) return std::nullopt;
  return result;
}

const char* QuantityUnits(Quantity kind) {
  switch (kind) {
    case Quantity::kBytes:
      return "B, KiB, MiB, GiB, TiB, KB, MB, GB, TB, PB";
    case Quantity::kBytesPerSecond:
      return "B/s, KiB/s, MiB/s, GiB/s, TiB/s, KB/s, MB/s, GB/s, TB/s, PB/s";
    case Quantity::kFlopsPerSecond:
      return "FLOPS or FLOP/s, with K, M, G, T or P before it (TFLOPS)";
  }
  return "";
}

int64_t ParseByteSize(const std::string& text, const std::string& where) {
  const std::optional<double> bytes = ParseQuantity(text, Quantity::kBytes);
  if (!bytes) {
    throw InputError(fmt::format("{}: '{}' is not a byte size (e.g. 65536, 64KiB, 2MiB; units: {})",
                                 where, text, QuantityUnits(Quantity::kBytes)));
  }
  if (*bytes != std::floor(*bytes) || *bytes > 9.2e18) {
    throw InputError(fmt::format("{}: '{}' is not a whole number of bytes", where, text));
  }
  return static_cast<int64_t>(*bytes);
}

}  // namespace kvsim
