// CandidateResult as JSON, exactly: what a process that evaluated some of a plan's
// candidates hands to the one that writes the plan's outputs (another MPI rank, or a
// shard file merged later). Decoding gives back every field bit for bit, so that
// PlanCsv, PlanJson and FormatPlan of merged results are byte-identical to those of a
// single process.
//
// The encoding is sim/metrics/exact_json.h's, which says how each value is written
// (its one line lets a shard file hold one candidate a line): after "version", every
// field of CandidateResult under its member name; KvChoice, SchedulerChoice,
// SearchResult (steps an array of objects) and the Summary at_max (summary_codec.h)
// are nested objects keyed the same way.
#pragma once

#include <cstdint>
#include <string>

#include "sim/core/json_value.h"
#include "sim/planner/planner.h"

namespace kvsim {

// The encoding's version, the "version" of every encoded candidate.
inline constexpr int64_t kCandidateCodecVersion = 4;

// `c` as described above.
std::string EncodeCandidate(const CandidateResult& c);

// The CandidateResult that EncodeCandidate wrote as `v` (ParseJson of its text), or
// exact_json::Decode's InputError; `where` names the source for messages (a file,
// "rank 3"), and a field's path runs from the top ("at_max.ttft_s.p99",
// "search.steps[2].qps").
CandidateResult DecodeCandidate(const JsonValue& v, const std::string& where);

}  // namespace kvsim
