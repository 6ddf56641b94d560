// Summary as JSON, exactly (exact_json.h): what a process that ran a simulation hands
// to the one that writes its outputs (another MPI rank of `kvsim sweep`). Decoding
// gives back every field bit for bit, so that SummaryJson and the tables of a decoded
// summary are byte-identical to those of the original.
//
// The encoding: after "version" (kSummaryCodecVersion), every member of Summary under
// its name, each Percentiles a nested object keyed by its members' names. The
// FieldLists are here, in the header, so that encodings of structs holding a Summary
// (sim/planner/candidate_codec.cc) can nest it.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "sim/core/json_value.h"
#include "sim/metrics/exact_json.h"
#include "sim/metrics/metrics.h"

namespace kvsim {

// The encoding's version, the "version" of every encoded summary.
inline constexpr int64_t kSummaryCodecVersion = 2;

// `s` as described above.
std::string EncodeSummary(const Summary& s);

// The Summary that EncodeSummary wrote as `v` (ParseJson of its text), or
// exact_json::Decode's InputError; `where` names the source for messages ("rank 3").
Summary DecodeSummary(const JsonValue& v, const std::string& where);

}  // namespace kvsim

namespace kvsim::exact_json {

template <>
struct FieldList<Percentiles> {
  using S = Percentiles;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_EXACT_FIELD(mean), KVSIM_EXACT_FIELD(p50), KVSIM_EXACT_FIELD(p90),
                      KVSIM_EXACT_FIELD(p99), KVSIM_EXACT_FIELD(count));
};

template <>
struct FieldList<Summary> {
  using S = Summary;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_EXACT_FIELD(kv_manager), KVSIM_EXACT_FIELD(requests_total),
      KVSIM_EXACT_FIELD(requests_completed), KVSIM_EXACT_FIELD(requests_rejected),
      KVSIM_EXACT_FIELD(requests_truncated), KVSIM_EXACT_FIELD(makespan_s),
      KVSIM_EXACT_FIELD(requests_per_s), KVSIM_EXACT_FIELD(output_tokens_per_s),
      KVSIM_EXACT_FIELD(total_tokens_per_s), KVSIM_EXACT_FIELD(ttft_s), KVSIM_EXACT_FIELD(tbt_s),
      KVSIM_EXACT_FIELD(tpot_s), KVSIM_EXACT_FIELD(e2e_s), KVSIM_EXACT_FIELD(queue_s),
      KVSIM_EXACT_FIELD(preemptions), KVSIM_EXACT_FIELD(prompt_tokens),
      KVSIM_EXACT_FIELD(prefix_hit_tokens), KVSIM_EXACT_FIELD(prefix_hit_requests),
      KVSIM_EXACT_FIELD(recomputed_tokens), KVSIM_EXACT_FIELD(prefix_caching),
      KVSIM_EXACT_FIELD(kv_bytes_per_token), KVSIM_EXACT_FIELD(kv_capacity_bytes),
      KVSIM_EXACT_FIELD(peak_allocated_bytes), KVSIM_EXACT_FIELD(mean_allocated_bytes),
      KVSIM_EXACT_FIELD(mean_live_bytes), KVSIM_EXACT_FIELD(mean_cached_bytes),
      KVSIM_EXACT_FIELD(fragmentation), KVSIM_EXACT_FIELD(max_running),
      KVSIM_EXACT_FIELD(mean_running), KVSIM_EXACT_FIELD(iterations),
      KVSIM_EXACT_FIELD(is_vattention), KVSIM_EXACT_FIELD(page_bytes), KVSIM_EXACT_FIELD(map_calls),
      KVSIM_EXACT_FIELD(unmap_calls), KVSIM_EXACT_FIELD(exposed_overhead_s),
      KVSIM_EXACT_FIELD(hidden_overhead_s), KVSIM_EXACT_FIELD(wall_s), KVSIM_EXACT_FIELD(events),
      KVSIM_EXACT_FIELD(percentiles_exact), KVSIM_EXACT_FIELD(arrival_span_s),
      KVSIM_EXACT_FIELD(offered_qps), KVSIM_EXACT_FIELD(queue_first_quarter_s),
      KVSIM_EXACT_FIELD(queue_last_quarter_s), KVSIM_EXACT_FIELD(backlog_age_s),
      KVSIM_EXACT_FIELD(overloaded), KVSIM_EXACT_FIELD(skipped_rows));
};

// A failure here: the struct gained, lost or renamed a member. List each of its
// members in its FieldList above and change kSummaryCodecVersion, and the versions of
// the encodings that nest a Summary (kCandidateCodecVersion).
static_assert(ListsEveryMember<Percentiles>(),
              "Percentiles changed: update FieldList<Percentiles>");
static_assert(ListsEveryMember<Summary>(), "Summary changed: update FieldList<Summary>");

}  // namespace kvsim::exact_json
