// Plans over MPI ranks: a coordinator on rank 0, workers on every rank.
#include "sim/app/plan_mpi.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "sim/core/check.h"

#ifdef KVSIM_HAVE_MPI
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "sim/core/json_value.h"
#include "sim/planner/candidate_codec.h"
#endif

namespace kvsim {
namespace {

// The launchers' variables for the number of processes they started (Open MPI,
// PMIx, MPICH's Hydra and Slurm's srun with PMI).
int LauncherWorldSize() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"}) {
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  }
  return 1;
}

}  // namespace

#ifndef KVSIM_HAVE_MPI

bool MpiBuilt() { return false; }
void MpiStart(int*, char***) {
  if (LauncherWorldSize() > 1) {
    throw InputError(fmt::format(
        "an MPI launcher started {} kvsim processes, but this kvsim was built without MPI: each "
        "would run the whole command; rebuild with Open MPI installed (apt-get install "
        "libopenmpi-dev openmpi-bin), or split a plan with --shard I/N",
        LauncherWorldSize()));
  }
}
void MpiStop() {}
void MpiAbort(int) {}
int MpiRank() { return 0; }
int MpiSize() { return 1; }
std::optional<std::vector<CandidateResult>> EvaluateOnRanks(const PlanConfig&, const PreparedPlan&,
                                                            const PlanOptions&) {
  KVSIM_CHECK(false, "EvaluateOnRanks without MPI");
  return std::nullopt;
}

#else

namespace {

bool started = false;  // MpiStart called MPI_Init_thread (one per process)

// Threads per rank: --jobs, else the plan's jobs, else all cores.
int Threads(const PlanConfig& plan, const PlanOptions& options) {
  const int jobs = options.jobs > 0 ? options.jobs : plan.jobs;
  return jobs > 0 ? jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Messages. A worker slot (one thread of a rank > 0) sends kAsk, carrying the results
// of its last batch if any; rank 0 answers kWork with the next batch of indices (none:
// no more, the slot ends). A rank whose slots have all ended sends kDone. Batches
// shrink as the candidates run out (Coordinate), so that round trips stay few while
// the last candidates still spread over every rank.
constexpr int kAsk = 1, kWork = 2, kDone = 3;

using Batch = std::vector<int64_t>;
using Results = std::vector<std::pair<int64_t, std::string>>;  // (index, encoding)

// kAsk's payload: per result its index, its encoding's length, the encoding.
std::string AskPayload(const Results& results) {
  std::string bytes;
  for (const auto& [index, encoded] : results) {
    const int64_t header[2] = {index, static_cast<int64_t>(encoded.size())};
    bytes.append(reinterpret_cast<const char*>(header), sizeof header);
    bytes += encoded;
  }
  return bytes;
}

Results ParseAsk(const std::string& bytes) {
  Results results;
  for (size_t at = 0; at < bytes.size();) {
    int64_t header[2];
    KVSIM_CHECK(at + sizeof header <= bytes.size(), "truncated kAsk message");
    std::memcpy(header, bytes.data() + at, sizeof header);
    at += sizeof header;
    const auto size = static_cast<size_t>(header[1]);
    KVSIM_CHECK(at + size <= bytes.size(), "truncated kAsk message");
    results.emplace_back(header[0], bytes.substr(at, size));
    at += size;
  }
  return results;
}

void Send(const std::string& bytes, int dest, int tag) {
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

std::string Receive(const MPI_Status& status) {
  int size = 0;
  MPI_Get_count(&status, MPI_BYTE, &size);
  std::string bytes(static_cast<size_t>(size), '\0');
  MPI_Recv(bytes.data(), size, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  return bytes;
}

// Runs `body` on `n` threads and joins them; rethrows the first exception.
template <typename Body>
void OnThreads(int n, Body body) {
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&] {
      try {
        body();
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

// Rank 0: hands out indices from `next` to asking ranks, stores their results, and
// returns once every candidate is in and every other rank is done. Its own threads
// (started by the caller) take indices from `next` and count into `done` directly.
void Coordinate(const PreparedPlan& prepared, std::vector<CandidateResult>& results,
                std::atomic<size_t>& next, std::atomic<size_t>& done, const PlanOptions& options) {
  const size_t total = prepared.candidates.size();
  int ranks_done = 0;
  size_t reported = 0;
  while (done.load() < total || ranks_done < MpiSize() - 1) {
    for (size_t now = done.load(); reported < now; ++reported) {
      if (options.progress) options.progress(1, static_cast<int64_t>(total));
    }
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
    if (!flag) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    const std::string bytes = Receive(status);
    if (status.MPI_TAG == kDone) {
      ++ranks_done;
      continue;
    }
    const std::string where = fmt::format("rank {}", status.MPI_SOURCE);
    for (const auto& [index, encoded] : ParseAsk(bytes)) {
      results[static_cast<size_t>(index)] = DecodeCandidate(ParseJson(encoded, where), where);
      ++done;
    }
    // About an eighth of what is left per rank, so that each rank's last batch is small.
    const size_t left = total - std::min(total, next.load());
    const size_t size = std::clamp<size_t>(left / (8 * static_cast<size_t>(MpiSize())), 1, 64);
    Batch batch;
    for (size_t k = 0; k < size; ++k) {
      const size_t i = next++;
      if (i >= total) break;
      batch.push_back(static_cast<int64_t>(i));
    }
    MPI_Send(batch.data(), static_cast<int>(batch.size()), MPI_INT64_T, status.MPI_SOURCE, kWork,
             MPI_COMM_WORLD);
  }
  for (; reported < total; ++reported) {
    if (options.progress) options.progress(1, static_cast<int64_t>(total));
  }
}

// A rank > 0: `slots` threads evaluate the batches rank 0 hands out; this (main)
// thread does all the MPI calls (MPI_THREAD_FUNNELED).
void Work(const PlanConfig& plan, const PreparedPlan& prepared, int slots) {
  std::mutex m;
  std::condition_variable cv;
  std::deque<Batch> work;        // batches to evaluate; an empty one: stop
  std::deque<Results> finished;  // a batch's results; empty after an error
  std::exception_ptr error;
  std::vector<std::thread> threads;
  for (int t = 0; t < slots; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        Batch batch;
        {
          std::unique_lock<std::mutex> lock(m);
          cv.wait(lock, [&] { return !work.empty(); });
          batch = std::move(work.front());
          work.pop_front();
        }
        if (batch.empty()) return;
        Results results;
        try {
          for (int64_t i : batch) {
            CandidateResult c = prepared.candidates[static_cast<size_t>(i)];
            EvaluateCandidate(plan, prepared, c);
            results.emplace_back(i, EncodeCandidate(c));
          }
        } catch (...) {
          std::lock_guard<std::mutex> lock(m);
          if (!error) error = std::current_exception();
          results.clear();
        }
        std::lock_guard<std::mutex> lock(m);
        finished.push_back(std::move(results));
        cv.notify_all();
      }
    });
  }
  // Sends `results` and asks for more; false when rank 0 has none (the slot ends).
  const auto ask = [&](const Results& results) {
    Send(AskPayload(results), 0, kAsk);
    MPI_Status status;
    MPI_Probe(0, kWork, MPI_COMM_WORLD, &status);
    int count = 0;
    MPI_Get_count(&status, MPI_INT64_T, &count);
    Batch batch(static_cast<size_t>(count));
    MPI_Recv(batch.data(), count, MPI_INT64_T, 0, kWork, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (batch.empty()) return false;
    std::lock_guard<std::mutex> lock(m);
    work.push_back(std::move(batch));
    cv.notify_all();
    return true;
  };
  int busy = 0;
  for (int t = 0; t < slots; ++t) busy += ask({}) ? 1 : 0;
  while (busy > 0) {
    Results results;
    {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return !finished.empty(); });
      results = std::move(finished.front());
      finished.pop_front();
    }
    --busy;
    if (results.empty()) break;  // an error: stop asking
    busy += ask(results) ? 1 : 0;
  }
  {
    std::lock_guard<std::mutex> lock(m);
    for (int t = 0; t < slots; ++t) work.emplace_back();
    cv.notify_all();
  }
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  Send(std::string(), 0, kDone);
}

}  // namespace

bool MpiBuilt() { return true; }

void MpiStart(int* argc, char*** argv) {
  if (LauncherWorldSize() <= 1 || started) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  started = true;
}

void MpiStop() {
  if (started) MPI_Finalize();
  started = false;
}

void MpiAbort(int exit_code) {
  if (started) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

int MpiRank() {
  int rank = 0;
  if (started) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int MpiSize() {
  int size = 1;
  if (started) MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

std::optional<std::vector<CandidateResult>> EvaluateOnRanks(const PlanConfig& plan,
                                                            const PreparedPlan& prepared,
                                                            const PlanOptions& options) {
  KVSIM_CHECK(MpiSize() > 1, "EvaluateOnRanks on one rank");
  const int threads = Threads(plan, options);
  if (MpiRank() != 0) {
    Work(plan, prepared, threads);
    return std::nullopt;
  }
  std::vector<CandidateResult> results = prepared.candidates;
  std::atomic<size_t> next{0}, done{0};
  if (options.progress) options.progress(0, static_cast<int64_t>(results.size()));
  std::exception_ptr error;
  // Rank 0's own threads; its main thread coordinates.
  std::thread local([&] {
    try {
      OnThreads(threads, [&] {
        for (size_t i = next++; i < results.size(); i = next++) {
          EvaluateCandidate(plan, prepared, results[i]);
          ++done;
        }
      });
    } catch (...) {
      error = std::current_exception();
      done = results.size() + 1;  // stop waiting for local results
    }
  });
  Coordinate(prepared, results, next, done, options);
  local.join();
  if (error) std::rethrow_exception(error);
  return results;
}

#endif

}  // namespace kvsim
