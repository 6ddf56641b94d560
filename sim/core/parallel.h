// ParallelFor: independent tasks on a few threads, for batches of simulations.
#pragma once

#include <cstddef>
#include <functional>

namespace kvsim {

// Runs task(0) ... task(n - 1) on up to `threads` threads (<= 0: one per core),
// each index once, in no particular order. After all have run, rethrows the error of
// the lowest index that threw, so which error surfaces does not depend on timing.
// Tasks must not share mutable state except through their own index.
//
// `done` (optional), the progress hook: called after each task that returned, one
// call at a time (under a lock), with the count finished so far (1, 2, ... n when
// none throws), from the thread that ran the task; an exception it throws counts as
// that task's.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& task,
                 const std::function<void(size_t done)>& done = {});

}  // namespace kvsim
