// Plans over MPI ranks: the candidates as RunOnRanks tasks.
#include "sim/app/plan_mpi.h"

#include <fmt/format.h>

#include <string>

#include "sim/core/check.h"
#include "sim/core/json_value.h"
#include "sim/planner/candidate_codec.h"

namespace kvsim {

std::optional<std::vector<CandidateResult>> EvaluateOnRanks(const PlanConfig& plan,
                                                            const PreparedPlan& prepared,
                                                            const PlanOptions& options) {
  KVSIM_CHECK(MpiSize() > 1, "EvaluateOnRanks on one rank");
  // Threads per rank: --jobs, else the plan's jobs, else all cores.
  const int threads = options.jobs > 0 ? options.jobs : plan.jobs;
  std::vector<CandidateResult> results = prepared.candidates;
  const auto total = static_cast<int64_t>(results.size());
  if (MpiRank() == 0 && options.progress) options.progress(0, total);
  const auto evaluate = [&](size_t i) {
    CandidateResult c = prepared.candidates[i];
    EvaluateCandidate(plan, prepared, c);
    return EncodeCandidate(c);
  };
  const auto gather = [&](size_t i, const std::string& encoded, int rank) {
    const std::string where = fmt::format("rank {}", rank);
    results[i] = DecodeCandidate(ParseJson(encoded, where), where);
    if (options.progress) options.progress(1, total);
  };
  if (!RunOnRanks(results.size(), threads, evaluate, gather)) return std::nullopt;
  return results;
}

}  // namespace kvsim
