// The all-reduce measurement's host-side pieces.
#include "tools/kvprobe/host/allreduce_plan.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "tools/kvprobe/host/profile_writer.h"

namespace kvprobe {

std::vector<int> DefaultAllreduceGpuCounts(int devices) {
  std::vector<int> counts;
  for (int n = 2; n <= devices; n *= 2) counts.push_back(n);
  if (devices >= 2 && counts.back() != devices) counts.push_back(devices);
  return counts;
}

std::vector<size_t> AllreduceSizes(bool quick) {
  std::vector<size_t> sizes;
  for (size_t bytes = size_t{64} << 10; bytes <= size_t{256} << 20; bytes *= quick ? 4 : 2) {
    sizes.push_back(bytes);
  }
  return sizes;
}

int AllreduceRepsFor(size_t bytes) {
  if (bytes <= size_t{4} << 20) return 200;
  if (bytes <= size_t{32} << 20) return 50;
  return 20;
}

std::string HexEncode(const void* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(bytes);
  std::string hex;
  hex.reserve(2 * size);
  for (size_t i = 0; i < size; ++i) {
    hex += kDigits[p[i] >> 4];
    hex += kDigits[p[i] & 0xf];
  }
  return hex;
}

bool HexDecode(const std::string& hex, void* out, size_t size) {
  if (hex.size() != 2 * size) return false;
  auto* p = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < size; ++i) {
    unsigned value = 0;
    const char* first = hex.data() + 2 * i;
    const auto [end, ec] = std::from_chars(first, first + 2, value, 16);
    if (ec != std::errc() || end != first + 2) return false;
    p[i] = static_cast<unsigned char>(value);
  }
  return true;
}

double BusBandwidthFactor(int gpus) { return 2.0 * (gpus - 1) / gpus; }

std::string RankTimesCsv(const std::map<size_t, RankTime>& times_by_bytes) {
  std::ostringstream out;
  out.precision(9);
  out << HeaderLine(schema::kAllreduceRankFile) << '\n';
  for (const auto& [bytes, t] : times_by_bytes) {
    out << bytes << ',' << t.time_us << ',' << t.in_graph_us << ',' << t.alone_in_graph_us << '\n';
  }
  return out.str();
}

namespace {

// A positive finite number filling `text`, or nothing.
bool ParsePositive(std::string_view text, double& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && value > 0 && std::isfinite(value);
}

// One rank's file: size -> times.
std::map<size_t, RankTime> ParseRankTimes(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(name + ":" + std::to_string(line_no) + ": " + what);
  };
  const std::string header = HeaderLine(schema::kAllreduceRankFile);
  std::map<size_t, RankTime> times;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1) {
      if (line != header) fail(("expected the header '" + header + "', got '").append(line) + "'");
      continue;
    }
    const size_t first = line.find(','), second = line.find(',', first + 1);
    const size_t third = second == std::string::npos ? second : line.find(',', second + 1);
    if (first == std::string::npos || second == std::string::npos || third == std::string::npos ||
        line.find(',', third + 1) != std::string::npos) {
      fail(("expected '" + header + "', got '").append(line) + "'");
    }
    size_t bytes = 0;
    RankTime t;
    const char* b = line.data();
    const auto [end_bytes, ec_bytes] = std::from_chars(b, b + first, bytes);
    const std::string_view view(line);
    if (ec_bytes != std::errc() || end_bytes != b + first || bytes == 0 ||
        !ParsePositive(view.substr(first + 1, second - first - 1), t.time_us) ||
        !ParsePositive(view.substr(second + 1, third - second - 1), t.in_graph_us) ||
        !ParsePositive(view.substr(third + 1), t.alone_in_graph_us)) {
      fail("expected a positive byte count and three positive times, got '" + line + "'");
    }
    if (!times.emplace(bytes, t).second) fail("size " + std::to_string(bytes) + " repeated");
  }
  if (line_no == 0) throw std::runtime_error(name + ": empty (the rank wrote nothing)");
  if (times.empty()) fail("no timings");
  return times;
}

}  // namespace

std::map<size_t, RankTime> CombineRankTimes(const std::vector<std::string>& rank_csvs,
                                            const std::vector<std::string>& names) {
  if (rank_csvs.empty() || names.size() != rank_csvs.size()) {
    throw std::invalid_argument("CombineRankTimes: one name per rank file, at least one rank");
  }
  std::map<size_t, RankTime> slowest = ParseRankTimes(rank_csvs[0], names[0]);
  for (size_t r = 1; r < rank_csvs.size(); ++r) {
    const std::map<size_t, RankTime> times = ParseRankTimes(rank_csvs[r], names[r]);
    bool same_sizes = times.size() == slowest.size();
    for (auto it = times.begin(); same_sizes && it != times.end(); ++it) {
      same_sizes = slowest.count(it->first) == 1;
    }
    if (!same_sizes) {
      throw std::runtime_error(names[r] + ": its message sizes differ from " + names[0] + "'s");
    }
    for (const auto& [bytes, t] : times) {
      RankTime& s = slowest[bytes];
      s.time_us = std::max(s.time_us, t.time_us);
      s.in_graph_us = std::max(s.in_graph_us, t.in_graph_us);
      s.alone_in_graph_us = std::max(s.alone_in_graph_us, t.alone_in_graph_us);
    }
  }
  return slowest;
}

}  // namespace kvprobe
