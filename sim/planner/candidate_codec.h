// CandidateResult as JSON, exactly: what a process that evaluated some of a plan's
// candidates hands to the one that writes the plan's outputs (another MPI rank, or a
// shard file merged later). Decoding gives back every field bit for bit, so that
// PlanCsv, PlanJson and FormatPlan of merged results are byte-identical to those of a
// single process.
//
// The encoding: one JSON object on one line (no line break, so shard files can hold
// one candidate per line), with "version" first and then every field of
// CandidateResult under its member name; KvChoice, SchedulerChoice, SearchResult
// (steps an array of objects), Summary and its Percentiles are nested objects keyed
// the same way.
//   - Doubles: a finite value as the shortest decimal that reads back to the same bits
//     ("0.30000000000000004", "-0", "5e-324"); a non-finite one as a string, since
//     JSON has no such numbers: "Infinity", "-Infinity", "NaN" and "-NaN" (the quiet
//     NaNs of either sign), "NaN:0x7ff4000000000000" (any other NaN, its bits in hex).
//   - Enums by name: kKvManagerTypes, kSchedulerTypes, kSearchStatuses.
//   - Strings as JSON strings; their bytes are kept as they are (no UTF-8 check).
#pragma once

#include <cstdint>
#include <string>

#include "sim/core/json_value.h"
#include "sim/planner/planner.h"

namespace kvsim {

// The encoding's version, the "version" field of every encoded candidate; a decoder
// rejects any other. Changes of the encoding (a field added, renamed or retyped)
// change it.
inline constexpr int64_t kCandidateCodecVersion = 2;

// `c` as described above.
std::string EncodeCandidate(const CandidateResult& c);

// The CandidateResult that EncodeCandidate wrote as `v` (ParseJson of its text).
// `where` names the source for messages (a file, "rank 3"). Throws InputError
// "where:line: 'path': what", path being the field's key path inside the object
// ("at_max.ttft_s.p99", "search.steps[2].qps"), on a missing, mistyped, unknown or
// out-of-range field, and on a version other than kCandidateCodecVersion.
CandidateResult DecodeCandidate(const JsonValue& v, const std::string& where);

}  // namespace kvsim
