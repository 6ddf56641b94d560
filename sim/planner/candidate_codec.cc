// CandidateResult's exact JSON encoding (candidate_codec.h), on the machinery of
// sim/metrics/exact_json.h: the FieldLists of the structs inside CandidateResult and
// the tables of its enums. Summary's and Percentiles' FieldLists are summary_codec.h's.
#include "sim/planner/candidate_codec.h"

#include <tuple>

#include "sim/metrics/exact_json.h"
#include "sim/metrics/summary_codec.h"

namespace kvsim {

// The names of CandidateResult's enums, found by exact_json's argument-dependent
// lookup (so here in namespace kvsim, beside the enums).
constexpr const auto& TableOf(KvManagerType) { return kKvManagerTypes; }
constexpr const auto& TableOf(SchedulerType) { return kSchedulerTypes; }
constexpr const auto& TableOf(SearchStatus) { return kSearchStatuses; }

}  // namespace kvsim

namespace kvsim::exact_json {

template <>
struct FieldList<SearchStep> {
  using S = SearchStep;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_EXACT_FIELD(qps), KVSIM_EXACT_FIELD(meets), KVSIM_EXACT_FIELD(binding));
};

template <>
struct FieldList<SearchResult> {
  using S = SearchResult;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_EXACT_FIELD(status), KVSIM_EXACT_FIELD(max_qps), KVSIM_EXACT_FIELD(first_fail_qps),
      KVSIM_EXACT_FIELD(binding), KVSIM_EXACT_FIELD(steps));
};

template <>
struct FieldList<KvChoice> {
  using S = KvChoice;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_EXACT_FIELD(type), KVSIM_EXACT_FIELD(block_tokens), KVSIM_EXACT_FIELD(page_bytes));
};

template <>
struct FieldList<SchedulerChoice> {
  using S = SchedulerChoice;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_EXACT_FIELD(type), KVSIM_EXACT_FIELD(max_num_seqs),
                      KVSIM_EXACT_FIELD(max_num_batched_tokens), KVSIM_EXACT_FIELD(chunk_tokens));
};

template <>
struct FieldList<CandidateResult> {
  using S = CandidateResult;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_EXACT_FIELD(name), KVSIM_EXACT_FIELD(scenario), KVSIM_EXACT_FIELD(gpu),
      KVSIM_EXACT_FIELD(tensor_parallel), KVSIM_EXACT_FIELD(kv), KVSIM_EXACT_FIELD(scheduler),
      KVSIM_EXACT_FIELD(feasible), KVSIM_EXACT_FIELD(note), KVSIM_EXACT_FIELD(timing_caveats),
      KVSIM_EXACT_FIELD(timing_assumptions), KVSIM_EXACT_FIELD(timing_line),
      KVSIM_EXACT_FIELD(search), KVSIM_EXACT_FIELD(meets_slo),
      KVSIM_EXACT_FIELD(max_qps_per_replica), KVSIM_EXACT_FIELD(max_qps_per_gpu),
      KVSIM_EXACT_FIELD(replicas), KVSIM_EXACT_FIELD(gpus), KVSIM_EXACT_FIELD(price_per_gpu_hour),
      KVSIM_EXACT_FIELD(cost_per_hour), KVSIM_EXACT_FIELD(cost_per_million_output_tokens),
      KVSIM_EXACT_FIELD(at_max), KVSIM_EXACT_FIELD(at_target), KVSIM_EXACT_FIELD(target_probes),
      KVSIM_EXACT_FIELD(pareto));
};

// A failure here: the struct gained, lost or renamed a member. List each of its
// members in its FieldList above and change kCandidateCodecVersion.
static_assert(ListsEveryMember<SearchStep>(), "SearchStep changed: update FieldList<SearchStep>");
static_assert(ListsEveryMember<SearchResult>(),
              "SearchResult changed: update FieldList<SearchResult>");
static_assert(ListsEveryMember<KvChoice>(), "KvChoice changed: update FieldList<KvChoice>");
static_assert(ListsEveryMember<SchedulerChoice>(),
              "SchedulerChoice changed: update FieldList<SchedulerChoice>");
static_assert(ListsEveryMember<CandidateResult>(),
              "CandidateResult changed: update FieldList<CandidateResult>");

}  // namespace kvsim::exact_json

namespace kvsim {

std::string EncodeCandidate(const CandidateResult& c) {
  return exact_json::Encode(c, kCandidateCodecVersion);
}

CandidateResult DecodeCandidate(const JsonValue& v, const std::string& where) {
  return exact_json::Decode<CandidateResult>(v, where, kCandidateCodecVersion,
                                             "an encoded candidate");
}

}  // namespace kvsim
