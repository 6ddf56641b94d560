// compare's outputs: each compare entry's run as a labelled summary, compare.json, the
// side-by-side table and the one-sentence verdict under it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sim/metrics/metrics.h"

namespace kvsim {

struct LabeledRun {
  std::string label;
  Summary summary;
  std::string summary_json;
};

// Whether the median request waited over a second before its first iteration, where
// an engine with room starts a request within an iteration (tens of ms): the load
// outruns the deployment, at least where it peaks. compare's "queues", sweep's "q" and
// run's QUEUEING.
inline bool MedianWaitOverASecond(const Summary& s) { return s.queue_s.p50 > 1.0; }

// The requests refused for max_model_len by each labelled run: "every run refuses N of
// M requests" when all of several refused the same, else "LABEL refuses N of M
// requests, ..." for those that refused some; "" when none did.
std::string RefusalText(const std::vector<std::pair<std::string, const Summary*>>& runs);

// compare.json: a list of {label, summary}, each summary summary.json's object.
std::string CompareJson(const std::vector<LabeledRun>& runs);

// The side-by-side table, with ratios to the run labelled "paged" (or the first
// paged run) where one exists; rows of refused and truncated requests when some run
// has them, of prefix hits when some run caches prefixes.
std::string FormatCompareTable(const std::vector<LabeledRun>& runs);
// Two runs whose verdict figure differs by at most this fraction of the best are
// named together (a tie), not one as the winner.
inline constexpr double kVerdictTieFraction = 0.005;
// A run whose peak KV reached this fraction of its capacity filled its cache.
inline constexpr double kKvFullFraction = 0.9;

// One sentence under the table: the run with the lowest E2E p50 (its ratio to the
// paged run when there is one), the least KV memory at peak (or, when every run's peak
// reached kKvFullFraction of its capacity, that the cache filled in every run), the
// largest running batch (each naming the best first and every run within
// kVerdictTieFraction of it, "alike in every run" when all are), the runs that did not keep up with
// the load: overloaded ones (their queue grew through the trace and never drained,
// Summary::overloaded) and queueing ones (median wait before the first iteration over 1 s, or TTFT
// p50 above 1 s and ten times the best run's), and the runs that refused requests for
// max_model_len. "verdict: ...\n"; empty for no runs.
std::string FormatVerdict(const std::vector<LabeledRun>& runs);

}  // namespace kvsim
