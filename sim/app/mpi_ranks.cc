// Tasks over MPI ranks (mpi_ranks.h): a coordinator on rank 0's calling thread, task
// threads on every rank.
#include "sim/app/mpi_ranks.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/parallel.h"

#ifdef KVSIM_HAVE_MPI
#include <mpi.h>
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

// Threads for `threads` (<= 0: one per core).
size_t ThreadCount(int threads) {
  return threads > 0 ? static_cast<size_t>(threads)
                     : std::max<size_t>(1, std::thread::hardware_concurrency());
}

// The results of tasks: (index, what the task returned).
using Results = std::vector<std::pair<int64_t, std::string>>;
// Indices of tasks that rank 0 hands to another rank.
using Batch = std::vector<int64_t>;

// The results of rank 0's own threads, on their way to its coordinating thread.
class LocalResults {
 public:
  // What Take found: results, and whether a thread failed (then no new task starts).
  struct Taken {
    Results results;
    bool failed = false;
  };

  void Push(size_t index, std::string bytes) {
    std::lock_guard<std::mutex> lock(m_);
    results_.emplace_back(static_cast<int64_t>(index), std::move(bytes));
    cv_.notify_all();
  }
  // No new task starts: a task failed, or the coordinator did.
  void Stop() {
    std::lock_guard<std::mutex> lock(m_);
    failed_ = true;
    cv_.notify_all();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(m_);
    return failed_;
  }
  // Every thread has ended.
  void Finish() {
    std::lock_guard<std::mutex> lock(m_);
    finished_ = true;
    cv_.notify_all();
  }
  // The results so far, once there is one or a failure; after `wait` at the latest
  // when it is not nullopt, else also once every thread has ended.
  Taken Take(std::optional<std::chrono::microseconds> wait) {
    std::unique_lock<std::mutex> lock(m_);
    if (wait) {
      cv_.wait_for(lock, *wait, [&] { return !results_.empty() || failed_; });
    } else {
      cv_.wait(lock, [&] { return !results_.empty() || failed_ || finished_; });
    }
    Taken taken{std::move(results_), failed_};
    results_.clear();
    return taken;
  }

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  Results results_;
  bool failed_ = false, finished_ = false;
};

// Rank 0's own threads: they take indices from `next` until none is left or `local`
// is stopped; a task's error stops the others and is rethrown.
void RunOwnThreads(size_t n, int threads, const RankTask& task, std::atomic<size_t>& next,
                   LocalResults& local) {
  const size_t width = ThreadCount(threads);
  ParallelFor(width, static_cast<int>(width), [&](size_t) {
    try {
      for (size_t i = next++; i < n && !local.stopped(); i = next++) local.Push(i, task(i));
    } catch (...) {
      local.Stop();
      throw;
    }
  });
}

#ifdef KVSIM_HAVE_MPI

bool started = false;  // MpiStart called MPI_Init_thread (one per process)

// Messages. A worker slot (one thread of a rank > 0) sends kAsk, carrying the results
// of its last batch if any; rank 0 answers kWork with the next batch of indices (none:
// no more, the slot ends). A rank whose slots have all ended sends kDone.
constexpr int kAsk = 1, kWork = 2, kDone = 3;

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
  KVSIM_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()),
              "an MPI message of 2 GiB or more");
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

#endif  // KVSIM_HAVE_MPI

// Rank 0's calling thread: hands out indices to the other ranks, and passes every
// result, theirs and its own threads', to on_result.
class Coordinator {
 public:
  Coordinator(size_t n, const RankResult& on_result, std::atomic<size_t>& next, LocalResults& local)
      : n_(n), on_result_(on_result), next_(next), local_(local), delivered_(n, false) {}

  // Returns once every result is in and every other rank is done, or early when one
  // of rank 0's threads failed (the caller rethrows its error).
  void Run() {
    // With other ranks, look for their messages every 200 µs.
    const std::optional<std::chrono::microseconds> wait =
        ranks_ > 1 ? std::optional(std::chrono::microseconds(200)) : std::nullopt;
    while (received_ < n_ || ranks_done_ < ranks_ - 1) {
      const bool polled = PollRanks();
      LocalResults::Taken taken =
          local_.Take(polled ? std::optional(std::chrono::microseconds(0)) : wait);
      if (taken.failed) return;
      KVSIM_CHECK(ranks_ > 1 || !taken.results.empty(), "rank 0's threads ended before its tasks");
      for (auto& [index, bytes] : taken.results) Deliver(index, std::move(bytes), 0);
    }
  }

 private:
  void Deliver(int64_t index, std::string bytes, int rank) {
    const auto i = static_cast<size_t>(index);
    KVSIM_CHECK(index >= 0 && i < n_ && !delivered_[i], "a result for no task, or a second one");
    delivered_[i] = true;
    ++received_;
    on_result_(i, std::move(bytes), rank);
  }

  // Handles one message of another rank: false when none is waiting.
  bool PollRanks() {
    if (ranks_ <= 1) return false;
#ifdef KVSIM_HAVE_MPI
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
    if (!flag) return false;
    const std::string bytes = Receive(status);
    if (status.MPI_TAG == kDone) {
      ++ranks_done_;
      return true;
    }
    Results results = ParseAsk(bytes);
    // The next batch first, so that the rank's thread need not wait for on_result.
    const Batch batch = NextBatch();
    MPI_Send(batch.data(), static_cast<int>(batch.size()), MPI_INT64_T, status.MPI_SOURCE, kWork,
             MPI_COMM_WORLD);
    for (auto& [index, encoded] : results) Deliver(index, std::move(encoded), status.MPI_SOURCE);
    return true;
#else
    return false;
#endif
  }

  // The next batch for another rank: about an eighth of what is left per rank (1 to
  // 64), so that each rank's last batch is small; empty when none is left.
  Batch NextBatch() {
    const size_t left = n_ - std::min(n_, next_.load());
    const size_t size = std::clamp<size_t>(left / (8 * static_cast<size_t>(ranks_)), 1, 64);
    Batch batch;
    for (size_t k = 0; k < size; ++k) {
      const size_t i = next_++;
      if (i >= n_) break;
      batch.push_back(static_cast<int64_t>(i));
    }
    return batch;
  }

  size_t n_;
  const RankResult& on_result_;
  std::atomic<size_t>& next_;
  LocalResults& local_;
  std::vector<bool> delivered_;  // by index
  int ranks_ = MpiSize();
  int ranks_done_ = 0;  // other ranks that sent kDone
  size_t received_ = 0;
};

// Rank 0's side of RunOnRanks.
void Lead(size_t n, int threads, const RankTask& task, const RankResult& on_result) {
  std::atomic<size_t> next{0};
  LocalResults local;
  std::exception_ptr error;  // of rank 0's own threads
  std::thread own([&] {
    try {
      RunOwnThreads(n, threads, task, next, local);
    } catch (...) {
      error = std::current_exception();
    }
    local.Finish();
  });
  try {
    Coordinator(n, on_result, next, local).Run();
  } catch (...) {
    local.Stop();
    own.join();
    throw;
  }
  own.join();
  if (error) std::rethrow_exception(error);
}

#ifdef KVSIM_HAVE_MPI

// A worker rank's queues between its calling thread (which does every MPI call,
// MPI_THREAD_FUNNELED) and its task threads (slots).
class SlotQueues {
 public:
  // A batch for a slot; an empty one ends the slot.
  void PushWork(Batch batch) {
    std::lock_guard<std::mutex> lock(m_);
    work_.push_back(std::move(batch));
    cv_.notify_all();
  }
  Batch PopWork() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return !work_.empty(); });
    Batch batch = std::move(work_.front());
    work_.pop_front();
    return batch;
  }
  // A batch's results; nullopt: a task of it failed.
  void PushFinished(std::optional<Results> results) {
    std::lock_guard<std::mutex> lock(m_);
    finished_.push_back(std::move(results));
    cv_.notify_all();
  }
  std::optional<Results> PopFinished() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return !finished_.empty(); });
    std::optional<Results> results = std::move(finished_.front());
    finished_.pop_front();
    return results;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Batch> work_;
  std::deque<std::optional<Results>> finished_;
};

// Sends `results` to rank 0 and asks for more; false when rank 0 has none (the slot
// ends), else the batch is queued for a slot.
bool Ask(const Results& results, SlotQueues& queues) {
  Send(AskPayload(results), 0, kAsk);
  MPI_Status status;
  MPI_Probe(0, kWork, MPI_COMM_WORLD, &status);
  int count = 0;
  MPI_Get_count(&status, MPI_INT64_T, &count);
  Batch batch(static_cast<size_t>(count));
  MPI_Recv(batch.data(), count, MPI_INT64_T, 0, kWork, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (batch.empty()) return false;
  queues.PushWork(std::move(batch));
  return true;
}

// A rank > 0: its slots run the batches rank 0 hands out, until it has none.
void Work(int threads, const RankTask& task) {
  const size_t slots = ThreadCount(threads);
  SlotQueues queues;
  std::exception_ptr error;
  std::thread pool([&] {
    try {
      ParallelFor(slots, static_cast<int>(slots), [&](size_t) {
        for (Batch batch = queues.PopWork(); !batch.empty(); batch = queues.PopWork()) {
          Results results;
          try {
            for (int64_t i : batch) results.emplace_back(i, task(static_cast<size_t>(i)));
          } catch (...) {
            queues.PushFinished(std::nullopt);
            throw;
          }
          queues.PushFinished(std::move(results));
        }
      });
    } catch (...) {
      error = std::current_exception();
    }
  });
  size_t busy = 0;
  for (size_t t = 0; t < slots; ++t) busy += Ask({}, queues) ? 1 : 0;
  while (busy > 0) {
    const std::optional<Results> results = queues.PopFinished();
    --busy;
    if (!results) break;  // an error: stop asking
    busy += Ask(*results, queues) ? 1 : 0;
  }
  for (size_t t = 0; t < slots; ++t) queues.PushWork({});
  pool.join();
  if (error) std::rethrow_exception(error);
  Send(std::string(), 0, kDone);
}

#endif  // KVSIM_HAVE_MPI

}  // namespace

bool RunOnRanks(size_t n, int threads, const RankTask& task, const RankResult& on_result) {
#ifdef KVSIM_HAVE_MPI
  if (MpiRank() != 0) {
    Work(threads, task);
    return false;
  }
#endif
  Lead(n, threads, task, on_result);
  return true;
}

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

#else

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

#endif

}  // namespace kvsim
