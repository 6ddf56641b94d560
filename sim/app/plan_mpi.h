// A plan over MPI ranks (`mpirun -np N kvsim plan PLAN`): the candidates spread over
// every rank's threads through RunOnRanks (mpi_ranks.h: dynamic work sharing, so a
// rank that finishes early takes more), their results travel to rank 0 exactly
// (candidate_codec.h), and rank 0 alone writes the outputs. MPI's start and end
// (MpiStart, MpiStop, MpiAbort, MpiRank, MpiSize, MpiBuilt) are declared in
// mpi_ranks.h, included here.
#pragma once

#include <optional>
#include <vector>

#include "sim/app/mpi_ranks.h"
#include "sim/config/plan_config.h"
#include "sim/planner/planner.h"

namespace kvsim {

// Evaluates every candidate of `prepared` over all ranks, each with up to
// options.jobs threads (0: the plan's jobs, else all cores). On rank 0: returns them,
// in candidate order, and reports options.progress as each ends; on the others:
// returns nullopt once rank 0 has no more work. REQUIRES: MpiSize() > 1; every rank
// prepared the same plan.
std::optional<std::vector<CandidateResult>> EvaluateOnRanks(const PlanConfig& plan,
                                                            const PreparedPlan& prepared,
                                                            const PlanOptions& options);

}  // namespace kvsim
