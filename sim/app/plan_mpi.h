// A plan over MPI ranks (`mpirun -np N kvsim plan PLAN`): rank 0 hands candidates
// out one at a time to whichever rank's thread asks next (dynamic work sharing, so a
// rank that finishes early takes more), its own threads take them too, and it
// gathers the results (candidate_codec.h, exact) and writes the outputs; the other
// ranks write nothing. Built only when CMake finds MPI (KVSIM_HAVE_MPI); without it
// every function here behaves as a single process, and a launch by mpirun is refused.
#pragma once

#include <optional>
#include <vector>

#include "sim/config/plan_config.h"
#include "sim/planner/planner.h"

namespace kvsim {

// Whether kvsim was built with MPI.
bool MpiBuilt();

// Starts MPI when this process was launched by an MPI launcher (its environment says
// so) and kvsim was built with MPI; otherwise nothing. Throws InputError when an MPI
// launcher started several processes of a kvsim built without MPI (each would run
// the whole plan and write the same outputs).
void MpiStart(int* argc, char*** argv);
// Ends MPI if MpiStart started it. Safe to call always.
void MpiStop();
// Ends every rank's process after an error on this one (MPI_Abort); a no-op
// without MPI.
void MpiAbort(int exit_code);

// This process's rank and the number of ranks: 0 and 1 unless MPI started.
int MpiRank();
int MpiSize();

// Evaluates every candidate of `prepared` over all ranks, each with up to
// options.jobs threads (0: the plan's jobs, else all cores). On rank 0: returns them,
// in candidate order, and reports options.progress as each ends; on the others:
// returns nullopt once rank 0 has no more work. REQUIRES: MpiSize() > 1; every rank
// prepared the same plan.
std::optional<std::vector<CandidateResult>> EvaluateOnRanks(const PlanConfig& plan,
                                                            const PreparedPlan& prepared,
                                                            const PlanOptions& options);

}  // namespace kvsim
