// kvsim over MPI ranks (`mpirun -np N kvsim plan|sweep ...`): starting and ending MPI,
// and RunOnRanks, which spreads a command's indexed tasks over every rank's threads
// with dynamic work sharing and brings each task's result, encoded as bytes, to rank
// 0, which alone writes the command's outputs. Built with MPI only when CMake finds it
// (KVSIM_HAVE_MPI); without it every function here behaves as a single process, and
// a launch by mpirun of several processes is refused.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace kvsim {

// Whether kvsim was built with MPI.
bool MpiBuilt();

// Starts MPI when this process was launched by an MPI launcher (its environment says
// so) and kvsim was built with MPI; otherwise nothing. Throws InputError when an MPI
// launcher started several processes of a kvsim built without MPI (each would run
// the whole command and write the same outputs).
void MpiStart(int* argc, char*** argv);
// Ends MPI if MpiStart started it. Safe to call always.
void MpiStop();
// Ends every rank's process after an error on this one (MPI_Abort); a no-op
// without MPI.
void MpiAbort(int exit_code);

// This process's rank and the number of ranks: 0 and 1 unless MPI started.
int MpiRank();
int MpiSize();

// One task of RunOnRanks: the result of task `index`, encoded as bytes (any bytes;
// they travel between ranks as they are). Called on a rank's worker threads,
// concurrently for different indices.
using RankTask = std::function<std::string(size_t index)>;
// Rank 0's handler of one task's result: `bytes` as task(index) returned them on
// rank `rank` (0 for rank 0's own threads; for messages). Called on the thread that
// called RunOnRanks, one result at a time.
using RankResult = std::function<void(size_t index, std::string bytes, int rank)>;

// Runs task(0) ... task(n - 1), each once, on `threads` threads of every rank
// (<= 0: one per core). Rank 0 hands the indices out in batches to whichever rank
// asks next, so a rank that finishes early takes more; batches shrink as the tasks
// run out, so the last ones still spread over every rank. Rank 0's own threads take
// indices too, and its calling thread coordinates.
//
// On rank 0: calls on_result once per task, in the order results arrive, and returns
// true when every result is in and every other rank has finished. On any other rank:
// returns false once rank 0 has no more work; on_result is not called there. Without
// MPI, or on one rank, every task runs on this process's threads and it returns true.
// Every rank calls it with the same `n` (a collective call).
//
// Errors: an exception from a task, or on rank 0 from on_result, ends the call on its
// rank once that rank's running tasks end (no new ones start) and is rethrown there;
// the caller then ends every rank (MpiAbort, as kvsim's main does), so that no rank
// waits for one that has stopped.
bool RunOnRanks(size_t n, int threads, const RankTask& task, const RankResult& on_result);

}  // namespace kvsim
