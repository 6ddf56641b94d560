// LogHistogram implementation.
#include "sim/metrics/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "sim/core/check.h"

namespace kvsim {

int LogHistogram::BucketOf(int64_t value) {
  const auto v = static_cast<uint64_t>(value);
  if (v < (1ULL << kSubBits)) return static_cast<int>(v);
  const int msb = 63 - std::countl_zero(v);  // >= kSubBits
  const int shift = msb - kSubBits;
  const int sub = static_cast<int>((v >> shift) & ((1ULL << kSubBits) - 1));
  return ((shift + 1) << kSubBits) + sub;
}

double LogHistogram::BucketMid(int bucket) {
  const int group = bucket >> kSubBits;
  const int sub = bucket & ((1 << kSubBits) - 1);
  if (group == 0) return sub;
  const int shift = group - 1;
  const double lo = std::ldexp(static_cast<double>((1 << kSubBits) + sub), shift);
  const double width = std::ldexp(1.0, shift);
  return lo + (width - 1) / 2;
}

void LogHistogram::Add(int64_t value, int64_t count) {
  KVSIM_CHECK(value >= 0 && count >= 0, "histogram values and counts must be non-negative");
  if (count == 0) return;
  counts_[BucketOf(value)] += count;
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  count_ += count;
  sum_ += value * count;
}

double LogHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      return std::clamp(BucketMid(b), static_cast<double>(min_), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

}  // namespace kvsim
