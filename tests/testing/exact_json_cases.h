// What the tests of the exact JSON codecs share (summary_codec_test.cc,
// candidate_codec_test.cc): a Summary with awkward values, comparisons of doubles by
// their bits, and the one-place edits of an encoded text that the malformed-input
// tests make.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <string>

#include "sim/metrics/metrics.h"

namespace kvsim::testing {

inline double FromBits(uint64_t bits) { return std::bit_cast<double>(bits); }
inline uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

// Equal values, doubles by their bits (so -0.0 differs from 0.0 and NaNs compare).
inline bool Same(double a, double b) { return Bits(a) == Bits(b); }
template <typename T>
bool Same(const T& a, const T& b) {
  return a == b;
}

// Expects the member `field` of `a` and `b` (in scope) to be Same, naming it if not.
#define KVSIM_EXPECT_SAME(field) EXPECT_TRUE(::kvsim::testing::Same(a.field, b.field)) << #field

// Expects every field of `a` and `b` to be Same.
inline void ExpectSamePercentiles(const Percentiles& a, const Percentiles& b, const char* name) {
  SCOPED_TRACE(name);
  KVSIM_EXPECT_SAME(mean);
  KVSIM_EXPECT_SAME(p50);
  KVSIM_EXPECT_SAME(p90);
  KVSIM_EXPECT_SAME(p99);
  KVSIM_EXPECT_SAME(count);
}

inline void ExpectSameSummary(const Summary& a, const Summary& b) {
  KVSIM_EXPECT_SAME(kv_manager);
  KVSIM_EXPECT_SAME(requests_total);
  KVSIM_EXPECT_SAME(requests_completed);
  KVSIM_EXPECT_SAME(requests_rejected);
  KVSIM_EXPECT_SAME(requests_truncated);
  KVSIM_EXPECT_SAME(makespan_s);
  KVSIM_EXPECT_SAME(requests_per_s);
  KVSIM_EXPECT_SAME(output_tokens_per_s);
  KVSIM_EXPECT_SAME(total_tokens_per_s);
  ExpectSamePercentiles(a.ttft_s, b.ttft_s, "ttft_s");
  ExpectSamePercentiles(a.tbt_s, b.tbt_s, "tbt_s");
  ExpectSamePercentiles(a.tpot_s, b.tpot_s, "tpot_s");
  ExpectSamePercentiles(a.e2e_s, b.e2e_s, "e2e_s");
  ExpectSamePercentiles(a.queue_s, b.queue_s, "queue_s");
  KVSIM_EXPECT_SAME(preemptions);
  KVSIM_EXPECT_SAME(prompt_tokens);
  KVSIM_EXPECT_SAME(prefix_hit_tokens);
  KVSIM_EXPECT_SAME(prefix_hit_requests);
  KVSIM_EXPECT_SAME(recomputed_tokens);
  KVSIM_EXPECT_SAME(prefix_caching);
  KVSIM_EXPECT_SAME(kv_bytes_per_token);
  KVSIM_EXPECT_SAME(kv_capacity_bytes);
  KVSIM_EXPECT_SAME(peak_allocated_bytes);
  KVSIM_EXPECT_SAME(mean_allocated_bytes);
  KVSIM_EXPECT_SAME(mean_live_bytes);
  KVSIM_EXPECT_SAME(mean_cached_bytes);
  KVSIM_EXPECT_SAME(fragmentation);
  KVSIM_EXPECT_SAME(max_running);
  KVSIM_EXPECT_SAME(mean_running);
  KVSIM_EXPECT_SAME(iterations);
  KVSIM_EXPECT_SAME(is_vattention);
  KVSIM_EXPECT_SAME(page_bytes);
  KVSIM_EXPECT_SAME(map_calls);
  KVSIM_EXPECT_SAME(unmap_calls);
  KVSIM_EXPECT_SAME(exposed_overhead_s);
  KVSIM_EXPECT_SAME(hidden_overhead_s);
  KVSIM_EXPECT_SAME(wall_s);
  KVSIM_EXPECT_SAME(events);
  KVSIM_EXPECT_SAME(percentiles_exact);
  KVSIM_EXPECT_SAME(arrival_span_s);
  KVSIM_EXPECT_SAME(offered_qps);
  KVSIM_EXPECT_SAME(queue_first_quarter_s);
  KVSIM_EXPECT_SAME(queue_last_quarter_s);
  KVSIM_EXPECT_SAME(backlog_age_s);
  KVSIM_EXPECT_SAME(overloaded);
  KVSIM_EXPECT_SAME(skipped_rows);
}

// A summary with every field away from its default, most of them awkward: rounding,
// denormals, signed zeros, NaNs of either sign and with payloads, infinities, the
// extremes of int64_t, escapes and bytes that are not UTF-8. Some values are unique in
// its encoding, for the malformed-input tests to edit: requests_rejected 12345,
// requests_completed 9223372036854775807, queue_s.p99 0.625, tbt_s.p90
// "NaN:0x7ff800000000beef".
inline Summary AwkwardSummary() {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  Summary s;
  s.kv_manager = "vattention \"quoted\" \\ tab\t line\nbreak \x01 caf\xC3\xA9 \xFF";
  s.requests_total = std::numeric_limits<int64_t>::min();
  s.requests_completed = std::numeric_limits<int64_t>::max();
  s.requests_rejected = 12345;
  s.requests_truncated = 4;
  s.makespan_s = 1e15;  // written as an integer literal
  s.requests_per_s = 1.0 / 3;
  s.output_tokens_per_s = std::numeric_limits<double>::max();
  s.total_tokens_per_s = std::numeric_limits<double>::min();
  s.ttft_s = {0.1 + 0.2, 1e-300, std::numeric_limits<double>::denorm_min(), -0.0, 5};
  s.tbt_s = {FromBits(0xfff8000000000000), -kInf, FromBits(0x7ff800000000beef),
             FromBits(0xfffc000000000001), 1};
  s.tpot_s = {2.5e-7, -1.5e-7, 123456789.125, 9007199254740993.0, 6};
  s.e2e_s = {1e22, 1e23, kInf, -4.9406564584124654e-324, 7};
  s.queue_s = {0.001, 0.002, 0.003, 0.625, 8};
  s.preemptions = 9;
  s.prompt_tokens = 10;
  s.prefix_hit_tokens = 11;
  s.prefix_hit_requests = 12;
  s.recomputed_tokens = 13;
  s.prefix_caching = true;
  s.kv_bytes_per_token = 131072;
  s.kv_capacity_bytes = 68719476736;
  s.peak_allocated_bytes = 14;
  s.mean_allocated_bytes = 2.2250738585072009e-308;  // largest denormal
  s.mean_live_bytes = 0.1;
  s.mean_cached_bytes = std::numeric_limits<double>::quiet_NaN();
  s.fragmentation = 1.0 - 0.9;
  s.max_running = 15;
  s.mean_running = 3.14159;
  s.iterations = 16;
  s.is_vattention = true;
  s.page_bytes = 65536;
  s.map_calls = 17;
  s.unmap_calls = 18;
  s.exposed_overhead_s = 1e-9;
  s.hidden_overhead_s = 3e-9;
  s.wall_s = 0.123456789012345678;
  s.events = 19;
  s.percentiles_exact = false;
  s.arrival_span_s = 41.5;
  s.offered_qps = 12.000000000000002;
  s.queue_first_quarter_s = 0.5;
  s.queue_last_quarter_s = 4.25;
  s.backlog_age_s = 30.125;
  s.overloaded = true;
  s.skipped_rows = "2 failed rows skipped";
  return s;
}

// `text` with its only occurrence of `from` replaced by `to`; fails the test when
// `from` does not occur once.
inline std::string ReplacedOnce(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

}  // namespace kvsim::testing
