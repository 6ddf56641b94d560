// All-reduce time on an unmeasured GPU count; the rule is stated in the header.
#include "sim/timing/allreduce_estimate.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

std::string CountList(const std::map<int64_t, double>& measured_s) {
  std::vector<std::string> counts;
  counts.reserve(measured_s.size());
  for (const auto& [n, s] : measured_s) counts.push_back(std::to_string(n));
  if (counts.size() == 1) return counts[0];
  std::string list;
  for (size_t i = 0; i + 1 < counts.size(); ++i) list += (i ? ", " : "") + counts[i];
  return list + " and " + counts.back();
}

}  // namespace

double RingFactor(int64_t gpus) {
  KVSIM_CHECK(gpus >= 1, "a GPU count is positive");
  return 2.0 * static_cast<double>(gpus - 1) / static_cast<double>(gpus);
}

double EstimateAllreduceSeconds(const std::map<int64_t, double>& measured_s, int64_t gpus) {
  KVSIM_CHECK(!measured_s.empty() && gpus >= 2, "an estimate needs measurements and 2+ GPUs");
  KVSIM_CHECK(!measured_s.contains(gpus), "the GPU count is measured");
  const double r = RingFactor(gpus);
  const auto above = measured_s.upper_bound(gpus);  // the smallest measured count above
  if (above == measured_s.begin()) {                // below every measured count
    return above->second * r / RingFactor(above->first);
  }
  const auto below = std::prev(above);  // the largest measured count below
  if (above != measured_s.end()) {      // between two measured counts
    const double r0 = RingFactor(below->first), r1 = RingFactor(above->first);
    return below->second + (above->second - below->second) * (r - r0) / (r1 - r0);
  }
  if (measured_s.size() == 1) return below->second * r / RingFactor(below->first);
  // Least squares of T = a + b r over the measured counts.
  double mean_r = 0, mean_t = 0;
  for (const auto& [n, t] : measured_s) {
    mean_r += RingFactor(n);
    mean_t += t;
  }
  const auto count = static_cast<double>(measured_s.size());
  mean_r /= count;
  mean_t /= count;
  double srr = 0, srt = 0;
  for (const auto& [n, t] : measured_s) {
    srr += (RingFactor(n) - mean_r) * (RingFactor(n) - mean_r);
    srt += (RingFactor(n) - mean_r) * (t - mean_t);
  }
  const double slope = srt / srr;
  return std::max(below->second, mean_t + slope * (r - mean_r));
}

std::string DescribeAllreduceEstimate(const std::map<int64_t, double>& measured_s, int64_t gpus) {
  KVSIM_CHECK(!measured_s.empty() && gpus >= 2, "an estimate needs measurements and 2+ GPUs");
  const std::string head =
      fmt::format("all-reduce on {} GPUs is not in the profile (measured: {} GPUs); ", gpus,
                  CountList(measured_s));
  const auto above = measured_s.upper_bound(gpus);
  if (above == measured_s.begin() || measured_s.size() == 1) {
    const int64_t m = above == measured_s.begin() ? above->first : std::prev(above)->first;
    return head + fmt::format(
                      "it is the {}-GPU time scaled by the ring factor 2(n-1)/n ({:.4g} / {:.4g}) "
                      "at each message size, i.e. the same bus bandwidth",
                      m, RingFactor(gpus), RingFactor(m));
  }
  if (above != measured_s.end()) {
    return head + fmt::format(
                      "it is interpolated at each message size between the {}- and {}-GPU times, "
                      "linearly in the ring factor 2(n-1)/n",
                      std::prev(above)->first, above->first);
  }
  return head + fmt::format(
                    "it is extrapolated at each message size along the least-squares line of "
                    "time against the ring factor 2(n-1)/n through the measured counts, never "
                    "below the {}-GPU time",
                    std::prev(above)->first);
}

}  // namespace kvsim
