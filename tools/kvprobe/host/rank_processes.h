// Rank processes: kvprobe measures multi-GPU work (NCCL all-reduce, tensor-parallel
// forward passes) with one fresh process per GPU, as serving engines run tensor
// parallelism; a forked CUDA context is unusable, so each rank is a new kvprobe
// started with the rank flags (args.h, RankProcess).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace kvprobe {

// Starts `argv` (argv[0]: the program's path) as a child process with this process's
// environment; returns its pid. Throws std::runtime_error naming the program when it
// cannot be started.
pid_t SpawnProcess(const std::vector<std::string>& argv);

// Waits for every process of `pids`. When one exits with a non-zero status or a
// signal, or `timeout_s` pass first, kills the others (a rank whose peer died waits
// in NCCL forever), reaps them and throws std::runtime_error naming `what` ("the
// 2-GPU all-reduce") and how the first failed rank ended.
void WaitForRanks(std::vector<pid_t> pids, const std::string& what, int timeout_s);

// The path of the running executable (/proc/self/exe). Throws std::runtime_error when
// it cannot be read.
std::string SelfExecutablePath();

}  // namespace kvprobe
