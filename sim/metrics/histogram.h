// LogHistogram: a fixed-memory histogram of non-negative integers (nanoseconds)
// with bounded relative error, for per-token latencies too many to keep.
#pragma once

#include <array>
#include <cstdint>

namespace kvsim {

// Buckets: values below 2^kSubBits are exact; above, each power of two is split
// into 2^kSubBits sub-buckets, so a reported quantile is within 2^-kSubBits
// (about 0.4%) of a value that was recorded.
class LogHistogram {
 public:
  static constexpr int kSubBits = 8;

  // Adds `count` copies of `value`. The result does not depend on the order of adds.
  void Add(int64_t value, int64_t count = 1);
  int64_t count() const { return count_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
  }
  int64_t max() const { return max_; }
  // The q-quantile (0 <= q <= 1) by the nearest-rank rule, as the midpoint of its
  // bucket (exact below 2^kSubBits and clamped to [min, max]). 0 when empty.
  double Quantile(double q) const;

 private:
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;
  static int BucketOf(int64_t value);
  static double BucketMid(int bucket);

  std::array<int64_t, kBuckets> counts_{};
  int64_t count_ = 0;
  int64_t sum_ = 0;  // ns, exact whatever the order of adds (to 292 years in all)
  int64_t min_ = 0;
  int64_t max_ = 0;
};

}  // namespace kvsim
